// contivctl leaks: what a node leaks when pods die badly. Namespaces held alive only by a bind mount (the
// seed of duplicate IPs), IPs present in two namespaces, allocations whose namespace and veth are gone,
// and host veths of ours with no allocation. `analyze` is pure over a snapshot; `--fix` acts only on
// findings that are provably ours (our subnet, our bridge, our record) and provably dead (no task inside,
// no namespace, no record). With the netplugin down (crash-looping, when this is needed most) the
// allocations are unknown: what the kernel shows is still reported, and nothing is provable enough to fix.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { NetpluginClient } from '../api/client';
import type { Endpoint, Health } from '../api/wire';
import { attachmentId } from '../api/wire';
import { inCidr } from '../ip/ip';
import { isHostVethName } from '../linux/ifname';
import { ip, ipJson } from '../linux/iproute';
import { listNetns, type NetnsInfo, type NsAddress, netnsAddresses, netnsInodeAt } from '../netns/inventory';
import { NETNS_DIRS } from '../netns/path';

export interface NamespaceSnapshot extends NetnsInfo {
  addresses: NsAddress[];
}

/** What the netplugin told us, or undefined when it did not answer. */
export interface Allocations {
  health: Health;
  endpoints: Endpoint[];
}

export interface NodeSnapshot {
  namespaces: NamespaceSnapshot[];
  /** The netplugin's view; undefined when it is down, so nothing can be proved ours and dead. */
  allocations?: Allocations;
  bridge: string;
  /** Host links enslaved to the netplugin's bridge. */
  bridgePorts: string[];
  /** For each endpoint (by container/ifname), the inode its recorded netns path names now, if any. */
  recordedInodes: Record<string, number | undefined>;
}

export type Leak =
  | { kind: 'duplicate-ip'; ip: string; namespaces: { inode: number; ref: string; tasks: number }[]; fixable: false; detail: string }
  | { kind: 'orphan-netns'; inode: number; mounts: string[]; addresses: string[]; fixable: boolean; detail: string }
  | { kind: 'stale-allocation'; containerId: string; ifname: string; ip: string; netns: string; hostVeth: string; fixable: true; detail: string }
  | { kind: 'orphan-veth'; hostVeth: string; fixable: true; detail: string }
  | { kind: 'unchecked-veth'; hostVeth: string; fixable: false; detail: string };

const UNCHECKED = 'the netplugin is down: its allocations could not be checked';

const key = (e: { containerId: string; ifname: string }) => attachmentId(e.containerId, e.ifname);

const describeHolder = (n: NamespaceSnapshot) => `net:[${n.inode}] (${n.tids.length ? `${n.tids.length} tasks` : 'no task'}, ${n.ref})`;

export function analyze(s: NodeSnapshot): Leak[] {
  const leaks: Leak[] = [];
  const a = s.allocations;
  const subnets = a ? [a.health.subnet, ...(a.health.subnet6 ? [a.health.subnet6] : [])] : [];
  const ours = (ip: string) => subnets.some((c) => inCidr(ip, c));
  const referenced = new Set(Object.values(s.recordedInodes).filter((i): i is number => i !== undefined));
  const recordedPaths = new Set(a?.endpoints.map((e) => e.netns));

  const holders = new Map<string, NamespaceSnapshot[]>();
  for (const ns of s.namespaces) {
    for (const addr of new Set(ns.addresses.map((x) => x.address))) holders.set(addr, [...(holders.get(addr) ?? []), ns]);
  }
  for (const [ip, nss] of holders) {
    if (nss.length < 2) continue;
    leaks.push({
      kind: 'duplicate-ip',
      ip,
      fixable: false,
      namespaces: nss.map((n) => ({ inode: n.inode, ref: n.ref, tasks: n.tids.length })),
      detail: `${ip} is configured in ${nss.length} namespaces: ${nss.map(describeHolder).join(', ')}`,
    });
  }

  for (const ns of s.namespaces) {
    if (ns.tids.length || ns.isHost || !ns.mounts.length) continue;
    const addresses = ns.addresses.map((x) => x.address);
    const isRecorded = referenced.has(ns.inode) || ns.mounts.some((m) => recordedPaths.has(m.mountPoint));
    const isLocal = ns.mounts.every((m) => m.local);
    const why = !a
      ? UNCHECKED
      : !addresses.some(ours)
        ? `none of its addresses is in ${subnets.join(' or ')}`
        : isRecorded
          ? 'an allocation still names it: the runtime has not sent DEL yet'
          : !isLocal
            ? 'a mount is in another mount namespace'
            : '';
    leaks.push({
      kind: 'orphan-netns',
      inode: ns.inode,
      mounts: ns.mounts.map((m) => m.path),
      addresses,
      fixable: !why,
      detail:
        `net:[${ns.inode}] has no process, only bind mount(s) ${ns.mounts.map((m) => m.path).join(', ')}` +
        (addresses.length ? `, holding ${addresses.join(', ')}` : '') +
        (why ? `; not fixed: ${why}` : ''),
    });
  }

  for (const e of a?.endpoints ?? []) {
    if (e.state !== 'ready' || s.recordedInodes[key(e)] !== undefined || s.bridgePorts.includes(e.hostVeth)) continue;
    leaks.push({
      kind: 'stale-allocation',
      containerId: e.containerId,
      ifname: e.ifname,
      ip: e.ipaddress,
      netns: e.netns,
      hostVeth: e.hostVeth,
      fixable: true,
      detail: `${e.ipaddress} is allocated to ${key(e)}, but its namespace ${e.netns || '(none recorded)'} and host veth ${e.hostVeth} are gone`,
    });
  }

  const recordedVeths = new Set(a?.endpoints.map((e) => e.hostVeth));
  for (const port of s.bridgePorts.filter(isHostVethName)) {
    if (!a) leaks.push({ kind: 'unchecked-veth', hostVeth: port, fixable: false, detail: `host veth ${port} on ${s.bridge}: ${UNCHECKED}` });
    else if (!recordedVeths.has(port))
      leaks.push({ kind: 'orphan-veth', hostVeth: port, fixable: true, detail: `host veth ${port} on ${s.bridge} has no allocation` });
  }
  return leaks;
}

/** The links on `bridge`; none when it does not exist (a netplugin that never started made none). */
export function bridgePorts(bridge: string): string[] {
  try {
    return ipJson(['link', 'show', 'master', bridge]).map((l) => l.ifname);
  } catch {
    return [];
  }
}

/** The node as the kernel shows it, with the netplugin's allocations when it answered; `bridge` is used when it did not. */
export function snapshot(allocations: Allocations | undefined, bridge: string): NodeSnapshot {
  const namespaces = listNetns().map((ns) => {
    let addresses: NsAddress[] = [];
    try {
      addresses = netnsAddresses(ns.isHost ? undefined : ns.ref);
    } catch {
      /* it died while we looked */
    }
    return { ...ns, addresses };
  });
  const endpoints = allocations?.endpoints ?? [];
  const recordedInodes = Object.fromEntries(endpoints.map((e) => [key(e), e.netns ? netnsInodeAt(e.netns) : undefined]));
  const onBridge = allocations?.health.bridge ?? bridge;
  return { namespaces, allocations, bridge: onBridge, bridgePorts: bridgePorts(onBridge), recordedInodes };
}

/** Undoes one fixable leak; returns what it did. */
export async function fix(leak: Leak, client: NetpluginClient): Promise<string> {
  switch (leak.kind) {
    case 'orphan-netns':
      for (const m of leak.mounts) {
        execFileSync('umount', [m]);
        // the file `ip netns add` made; a mount point elsewhere is left as the empty file it is
        if ((NETNS_DIRS as readonly string[]).includes(path.dirname(m))) execFileSync('rm', ['-f', m]);
      }
      return `unmounted ${leak.mounts.join(', ')}: net:[${leak.inode}] is freed with its addresses`;
    case 'stale-allocation':
      await client.delPod({ CNI_CONTAINERID: leak.containerId, K8S_POD_INFRA_CONTAINER_ID: leak.containerId, CNI_IFNAME: leak.ifname, CNI_NETNS: '' });
      return `released ${leak.ip} of ${leak.containerId}/${leak.ifname} through the netplugin`;
    case 'orphan-veth':
      ip(['link', 'del', leak.hostVeth]);
      return `deleted host veth ${leak.hostVeth}`;
    default:
      throw new Error(`${leak.kind} is not fixable by itself`);
  }
}
