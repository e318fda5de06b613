// The netplugin reaches a pod's namespace the contiv way, by the PID in /proc/<pid>/ns/net, and proves
// it is looking at the namespace the adapter verified (same inode) before touching it. From then on the
// opened file is the namespace's identity: the veth's peer is created in it by fd and the pod-side socket
// is opened in it, so a PID or thread that moves meanwhile changes nothing.
import { CniError, ErrorCode } from '../errors';
import { openSocket, type RtNetlinkSocket } from '../linux/rtnetlink';
import { enterNetns, HOST_PID_HINT, type NetnsHandle, nsIdOf, openNetns, sameNs } from '../netns/netns';
import { classifyNetnsPath } from '../netns/path';

export function resolvePodNetns(netns: string | undefined, expected?: { dev?: number; ino?: number }): NetnsHandle {
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
  return ns;
}

/**
 * An rtnetlink socket inside a pod's namespace. A socket belongs to the namespace of the thread that
 * creates it: the main thread enters `ns`, creates it and goes back `home` in one synchronous step, so
 * nothing else on the event loop ever runs in the pod's namespace.
 */
export function socketIn(ns: NetnsHandle, home: NetnsHandle, onError: (err: Error) => void): RtNetlinkSocket {
  enterNetns(ns);
  try {
    return openSocket(onError);
  } finally {
    enterNetns(home);
  }
}
