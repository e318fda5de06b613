// The netplugin reaches a pod's namespace the contiv way, by the PID in /proc/<pid>/ns/net, and proves
// it is looking at the namespace the adapter verified (same inode) before touching it.
import { CniError, ErrorCode } from '../errors';
import { HOST_PID_HINT, type NetnsHandle, nsIdOf, openNetns, sameNs } from '../netns/netns';
import { classifyNetnsPath } from '../netns/path';

export interface PodNetns {
  pid: number;
  ns: NetnsHandle;
}

export function resolvePodNetns(netns: string | undefined, expected?: { dev?: number; ino?: number }): PodNetns {
  if (!netns) throw new CniError(ErrorCode.InvalidEnv, 'CNI_NETNS is required');
  const form = classifyNetnsPath(netns);
  if (!form || (form.kind !== 'proc-pid' && form.kind !== 'proc-task')) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      `invalid nw name space ${JSON.stringify(netns)}: netplugin needs /proc/<pid>/ns/net`,
      'use the contivk8s adapter, which rewrites every runtime convention to that form',
    );
  }
  const ns = openNetns(netns, 'netplugin');
  if (expected?.ino !== undefined && (ns.ino !== expected.ino || (expected.dev !== undefined && ns.dev !== expected.dev))) {
    ns.close();
    throw new CniError(
      ErrorCode.Io,
      `netplugin sees a different namespace at ${netns} (inode ${ns.ino}) than the plugin entered (inode ${expected.ino})`,
      HOST_PID_HINT,
    );
  }
  // whoever reaches the socket, the daemon never wires its own (the host's) namespace as a pod: that would
  // put eth0 and a default route via the pod gateway on the host
  if (sameNs(ns, nsIdOf('/proc/self/ns/net'))) {
    ns.close();
    throw new CniError(
      ErrorCode.InvalidEnv,
      `${netns} is the netplugin's own network namespace (the host's), not a pod's`,
      'refusing to wire it; nothing was changed',
    );
  }
  return { pid: form.pid, ns };
}
