// The adapter's CNI commands, as the reference plugins' cmdAdd/cmdDel/cmdCheck: each takes the decoded
// environment and configuration and what it may touch (Deps), and returns what to answer. No module state and
// no process: src/cli/contivk8s.ts is the exec'd main that reads stdin, keeps the deadline and writes the
// answer; tests call these in-process with fakes (test/unit/adapter.test.ts).
import { type NetpluginClient, NetpluginUnreachable } from '../api/client';
import type { PodAttr, QueuedDel } from '../api/wire';
import type { NetConf } from '../cni/config';
import type { CniEnv } from '../cni/env';
import { prevResultAddresses, renderResult } from '../cni/result';
import { staticRequest } from '../cni/static';
import { asCniError, CniError, ErrorCode, PluginErrorCode } from '../errors';
import type { Level } from '../log/jsonl';
import type { NsId } from '../netns/netns';
import { procNetnsPath } from '../netns/path';

/** The pod's namespace once this process's main thread is in it. */
export interface EnteredNetns extends NsId {
  close(): void;
}

/** Everything a command reaches outside itself. */
export interface Deps {
  /** This process's PID: the netplugin is asked to wire /proc/<pid>/ns/net. */
  pid: number;
  /** Opens CNI_NETNS, refuses the host's own, and moves the main thread into it. */
  enterNetns(path: string): EnteredNetns;
  /** The netplugin's client for this configuration. */
  netplugin(conf: NetConf): NetpluginClient;
  /** Queues a DEL beside the socket; its file, or undefined when no netplugin ever served there. */
  enqueueDel(socket: string, entry: QueuedDel): string | undefined;
  log(level: Level, message: string, meta: Record<string, unknown>): void;
  /** What the command waits on now, for the deadline's message and code. */
  waiting(what: string, code: number): void;
  now(): number;
}

export interface Outcome {
  /** The result to print (ADD); nothing for the others. */
  stdout?: unknown;
  /** The path the netplugin was given for the namespace ('' when none). */
  rewrittenNetns?: string;
}

function enter(e: CniEnv, deps: Deps): EnteredNetns {
  deps.waiting(`the network namespace ${e.netns}`, ErrorCode.Io);
  return deps.enterNetns(e.netns);
}

function netplugin(c: NetConf, deps: Deps): NetpluginClient {
  deps.waiting(`the netplugin on ${c.socket}`, ErrorCode.TryAgainLater);
  return deps.netplugin(c);
}

function podAttr(e: CniEnv, deps: Deps, ns?: EnteredNetns): PodAttr {
  return {
    K8S_POD_NAME: e.args.K8S_POD_NAME,
    K8S_POD_NAMESPACE: e.args.K8S_POD_NAMESPACE,
    K8S_POD_INFRA_CONTAINER_ID: e.args.K8S_POD_INFRA_CONTAINER_ID ?? e.containerId,
    K8S_POD_UID: e.args.K8S_POD_UID,
    CNI_CONTAINERID: e.containerId,
    CNI_IFNAME: e.ifname,
    ...(ns ? { CNI_NETNS: procNetnsPath(deps.pid), CONTIV_NETNS_DEV: ns.dev, CONTIV_NETNS_INODE: ns.ino, CONTIV_ORIG_NETNS: e.netns } : {}),
  };
}

export async function cmdAdd(e: CniEnv, c: NetConf, deps: Deps): Promise<Outcome> {
  // static requests are checked before anything on the node is touched
  const wanted = staticRequest({ ...c.staticSources, cniArgs: e.args });
  const ns = enter(e, deps);
  // the fd is kept, and this thread in the namespace, until the netplugin has answered
  const rsp = await netplugin(c, deps).addPod({
    ...podAttr(e, deps, ns),
    CONTIV_DEFAULT_ROUTE: c.isDefaultGateway ?? e.ifname === 'eth0',
    CONTIV_HAIRPIN: c.hairpin,
    ...(wanted.ips.length ? { CONTIV_IPS: wanted.ips } : {}),
    ...(wanted.mac ? { CONTIV_MAC: wanted.mac } : {}),
  });
  if (!rsp.ipaddress) throw new CniError(ErrorCode.Io, 'netplugin answered AddPod without an IP address');
  // a netplugin that does not know the static request (contiv's own) must not answer something else
  const got = [rsp.ipaddress, rsp.ipv6address].filter(Boolean).map((a) => (a as string).split('/')[0]);
  const missed = wanted.ips.map((ip) => ip.split('/')[0]).filter((ip) => !got.includes(ip));
  if (missed.length || (wanted.mac && rsp.mac?.toLowerCase() !== wanted.mac)) {
    throw new CniError(ErrorCode.Io, `netplugin answered AddPod without the requested ${missed.length ? `IP ${missed.join(', ')}` : `MAC ${wanted.mac}`}`);
  }
  const result = renderResult(c.cniVersion, {
    ...(rsp.hostveth ? { hostInterface: { name: rsp.hostveth } } : {}),
    podInterface: { name: e.ifname, mac: rsp.mac, sandbox: e.netns },
    ipv4: { address: rsp.ipaddress, gateway: rsp.gateway },
    ...(rsp.ipv6address ? { ipv6: { address: rsp.ipv6address, gateway: rsp.ipv6gateway } } : {}),
    defaultRoute: rsp.defaultroute !== false, // contiv's netplugin always routes
  });
  return { stdout: result, rewrittenNetns: procNetnsPath(deps.pid) };
}

export async function cmdDel(e: CniEnv, c: NetConf, deps: Deps): Promise<Outcome> {
  // DEL must free the IP and the host veth even when the namespace is gone or unusable (kubernetes #57465):
  // an empty, vanished or unusable CNI_NETNS is sent as no namespace at all.
  let ns: EnteredNetns | undefined;
  if (e.netns) {
    try {
      ns = enter(e, deps);
    } catch (err) {
      deps.log('warn', 'DEL without namespace', { netns: e.netns, reason: asCniError(err).message });
    }
  }
  try {
    await netplugin(c, deps).delPod(podAttr(e, deps, ns));
  } catch (err) {
    if (!(err instanceof NetpluginUnreachable)) throw err;
    // a netplugin that is down or hung must not block a pod's teardown: the DEL is queued durably beside its
    // socket and applied by the netplugin before it serves another ADD (src/api/del-queue.ts)
    const queued = deps.enqueueDel(c.socket, {
      containerId: e.containerId,
      ifname: e.ifname,
      netns: e.netns,
      podName: e.args.K8S_POD_NAME,
      podNamespace: e.args.K8S_POD_NAMESPACE,
      queuedAt: deps.now(),
      reason: err.message,
    });
    deps.log('warn', queued ? 'DEL queued: the netplugin could not be asked' : 'DEL answered: no netplugin ever served this socket', {
      reason: err.message,
      ...(queued ? { queued } : {}),
    });
  }
  return { rewrittenNetns: ns ? procNetnsPath(deps.pid) : '' };
}

export async function cmdCheck(e: CniEnv, c: NetConf, deps: Deps): Promise<Outcome> {
  if (!c.prevResult) throw new CniError(ErrorCode.InvalidConfig, 'CHECK needs prevResult in the network configuration');
  const ns = enter(e, deps);
  const rsp = await netplugin(c, deps).checkPod(podAttr(e, deps, ns));
  const observed = new Set(rsp.observed ?? []);
  const expected = prevResultAddresses(c.prevResult, e.ifname);
  const missing = expected.filter((a) => !observed.has(a));
  if (missing.length) {
    throw new CniError(PluginErrorCode.CheckFailed, `${e.ifname} in ${e.netns} lacks ${missing.join(', ')}`, `found: ${[...observed].join(', ') || 'none'}`);
  }
  if (rsp.ipaddress && !expected.includes(rsp.ipaddress)) {
    throw new CniError(PluginErrorCode.CheckFailed, `prevResult does not carry the allocated address ${rsp.ipaddress}`);
  }
  return { rewrittenNetns: procNetnsPath(deps.pid) };
}

export async function cmdGc(c: NetConf, deps: Deps): Promise<Outcome> {
  if (!c.validAttachments) {
    throw new CniError(ErrorCode.InvalidConfig, 'GC needs cni.dev/valid-attachments', 'without it every attachment would be freed');
  }
  await netplugin(c, deps).gc({ validAttachments: c.validAttachments });
  return {};
}

export async function cmdStatus(c: NetConf, deps: Deps): Promise<Outcome> {
  if (!(await netplugin(c, deps).healthy())) {
    throw new CniError(ErrorCode.PluginNotAvailable, `netplugin is not available on ${c.socket}`);
  }
  return {};
}

/** The command CNI_COMMAND names (VERSION is answered before the configuration is read). */
export function dispatch(e: CniEnv, c: NetConf, deps: Deps): Promise<Outcome> {
  switch (e.command) {
    case 'ADD':
      return cmdAdd(e, c, deps);
    case 'DEL':
      return cmdDel(e, c, deps);
    case 'CHECK':
      return cmdCheck(e, c, deps);
    case 'GC':
      return cmdGc(c, deps);
    case 'STATUS':
      return cmdStatus(c, deps);
    case 'VERSION':
      throw new Error('unreachable: VERSION is answered before the configuration is read');
  }
}
