// contivctl leaks: what a node leaks when pods die badly, told apart from what is live or not ours.
//   duplicate-ip       an address configured in two namespaces                       reported
//   dead-netns         a namespace held only by bind mounts, holding an address of    reported (never unmounted:
//                      our subnet that no record explains                              no mount is ours)
//   stale-allocation   a record whose host veth is gone: no pod holds its address     fixable: freed
//   unrecorded-veth    a host veth with our ownership mark but no record              fixable: adopted (it is live)
//   foreign-veth       a link on our bridge without our mark or a record              reported, left alone
//   unchecked-veth     a link on our bridge while the netplugin is down               reported
// Ownership is proven by our records and the mark the daemon writes on each host veth, never guessed from a
// name or a subnet. `analyze` is pure over a snapshot. `--fix` sends the fixable findings to the netplugin,
// which re-verifies each one under the lock its ADDs and DELs take, at the moment it acts, and touches
// nothing made after the scan began; what changed or vanished meanwhile is skipped, not an error.
import type { NetpluginClient } from '../api/client';
import { attachmentId } from '../api/routes';
import type { Endpoint, FixOutcome, FixRequest, Health } from '../api/wire';
import { inCidr } from '../ip/ip';
import { ipJson } from '../linux/iproute';
import { ownershipOf } from '../linux/mark';
import { listNetns, type NetnsInfo, type NsAddress, netnsAddresses, netnsInodeAt } from '../netns/inventory';

export interface NamespaceSnapshot extends NetnsInfo {
  addresses: NsAddress[];
}

/** What the netplugin told us, or undefined when it did not answer. */
export interface Allocations {
  health: Health;
  endpoints: Endpoint[];
}

/** A link enslaved to the netplugin's bridge, with its alias (our ownership mark, or anything else). */
export interface PortSnapshot {
  name: string;
  alias?: string;
}

export interface NodeSnapshot {
  /** When the scan began (ms): a fix never touches what was made after it. */
  takenAt: number;
  namespaces: NamespaceSnapshot[];
  /** The netplugin's view; undefined when it is down, so nothing can be proved ours and dead. */
  allocations?: Allocations;
  bridge: string;
  bridgePorts: PortSnapshot[];
  /** For each endpoint (by container/ifname), the inode its recorded netns path names now, if any. */
  recordedInodes: Record<string, number | undefined>;
}

export type Leak =
  | { kind: 'duplicate-ip'; ip: string; namespaces: { inode: number; ref: string; tasks: number; recorded: boolean }[]; fixable: false; detail: string }
  | { kind: 'dead-netns'; inode: number; mounts: string[]; addresses: string[]; fixable: false; detail: string }
  | { kind: 'stale-allocation'; containerId: string; ifname: string; ip: string; createdAt: string; hostVeth: string; fixable: true; detail: string }
  | { kind: 'unrecorded-veth'; hostVeth: string; alias: string; containerId: string; ifname: string; ip: string; fixable: true; detail: string }
  | { kind: 'foreign-veth'; hostVeth: string; fixable: false; detail: string }
  | { kind: 'unchecked-veth'; hostVeth: string; fixable: false; detail: string };

const UNCHECKED = 'the netplugin is down: its allocations could not be checked';

const key = (e: { containerId: string; ifname: string }) => attachmentId(e.containerId, e.ifname);

const describeHolder = (n: NamespaceSnapshot) => `net:[${n.inode}] (${n.tids.length ? `${n.tids.length} tasks` : 'no task'}, ${n.ref})`;

export function analyze(s: NodeSnapshot): Leak[] {
  const leaks: Leak[] = [];
  const a = s.allocations;
  const subnets = a ? [a.health.subnet, ...(a.health.subnet6 ? [a.health.subnet6] : [])] : [];
  const ours = (ip: string) => subnets.some((c) => inCidr(ip, c));
  const recordedInodes = new Set(Object.values(s.recordedInodes).filter((i): i is number => i !== undefined));
  const recordedIps = new Set(a?.endpoints.flatMap((e) => [e.ipaddress, e.ipv6address].filter(Boolean).map((c) => (c as string).split('/')[0])));

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
      namespaces: nss.map((n) => ({ inode: n.inode, ref: n.ref, tasks: n.tids.length, recorded: recordedInodes.has(n.inode) })),
      detail: `${ip} is configured in ${nss.length} namespaces: ${nss.map(describeHolder).join(', ')}`,
    });
  }

  // a namespace only a mount keeps alive matters here when it holds an address of ours that no record
  // explains: the seed of a duplicate IP. A recorded one is a sandbox whose runtime has not started its
  // process yet (containerd's, during ADD) or not sent DEL: its runtime's business.
  for (const ns of s.namespaces) {
    if (ns.tids.length || ns.isHost || !ns.mounts.length || recordedInodes.has(ns.inode)) continue;
    const addresses = ns.addresses.map((x) => x.address).filter((ip) => !a || ours(ip));
    if (!addresses.length) continue;
    const unexplained = addresses.filter((ip) => !recordedIps.has(ip));
    leaks.push({
      kind: 'dead-netns',
      inode: ns.inode,
      mounts: ns.mounts.map((m) => m.path),
      addresses,
      fixable: false,
      detail:
        `net:[${ns.inode}] has no process, only bind mount(s) ${ns.mounts.map((m) => m.path).join(', ')}` +
        (addresses.length ? `, holding ${addresses.join(', ')}` : '') +
        (!a ? `; ${UNCHECKED}` : unexplained.length < addresses.length ? '; a live pod has the same address' : '') +
        '; no mount is the netplugin’s: if nothing needs it, umount it',
    });
  }

  const ports = new Map(s.bridgePorts.map((p) => [p.name, p]));
  for (const e of a?.endpoints ?? []) {
    if (e.state !== 'ready' || ports.has(e.hostVeth)) continue;
    leaks.push({
      kind: 'stale-allocation',
      containerId: e.containerId,
      ifname: e.ifname,
      ip: e.ipaddress,
      createdAt: e.createdAt,
      hostVeth: e.hostVeth,
      fixable: true,
      detail: `${e.ipaddress} is allocated to ${key(e)}, but its host veth ${e.hostVeth} is gone: no pod holds the address`,
    });
  }

  const recordedVeths = new Set(a?.endpoints.map((e) => e.hostVeth));
  for (const port of s.bridgePorts) {
    if (!a) {
      leaks.push({ kind: 'unchecked-veth', hostVeth: port.name, fixable: false, detail: `host veth ${port.name} on ${s.bridge}: ${UNCHECKED}` });
      continue;
    }
    if (recordedVeths.has(port.name)) continue;
    const mark = ownershipOf(port);
    if (mark) {
      leaks.push({
        kind: 'unrecorded-veth',
        hostVeth: port.name,
        alias: port.alias as string,
        containerId: mark.containerId,
        ifname: mark.ifname,
        ip: mark.ipv4,
        fixable: true,
        detail: `host veth ${port.name} carries our mark for ${key(mark)} (${mark.ipv4}) but no record: a live pod the store lost; --fix adopts it`,
      });
    } else {
      leaks.push({
        kind: 'foreign-veth',
        hostVeth: port.name,
        fixable: false,
        detail: `${port.name} on ${s.bridge} has neither our ownership mark nor a record: not ours, left alone`,
      });
    }
  }
  return leaks;
}

/** The links on `bridge` with their aliases; none when it does not exist (a netplugin that never started made none). */
export function bridgePorts(bridge: string): PortSnapshot[] {
  try {
    return ipJson<{ ifname: string; ifalias?: string }[]>(['link', 'show', 'master', bridge]).map((l) => ({ name: l.ifname, alias: l.ifalias }));
  } catch {
    return [];
  }
}

/** The node as the kernel shows it, with the netplugin's allocations when it answered; `bridge` is used when it did not. */
export function snapshot(takenAt: number, allocations: Allocations | undefined, bridge: string): NodeSnapshot {
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
  return { takenAt, namespaces, allocations, bridge: onBridge, bridgePorts: bridgePorts(onBridge), recordedInodes };
}

/** What the netplugin is asked to re-verify and fix, for each fixable finding. */
export function fixRequest(leak: Leak): FixRequest | undefined {
  if (leak.kind === 'stale-allocation') return { kind: leak.kind, containerId: leak.containerId, ifname: leak.ifname, createdAt: leak.createdAt };
  if (leak.kind === 'unrecorded-veth') return { kind: leak.kind, hostVeth: leak.hostVeth, alias: leak.alias };
  return undefined;
}

/** Sends the fixable findings to the netplugin, which re-verifies and acts on each one under its own locks. */
export async function fix(leaks: Leak[], takenAt: number, client: NetpluginClient): Promise<FixOutcome[]> {
  const findings = leaks.flatMap((l) => fixRequest(l) ?? []);
  if (!findings.length) return [];
  return (await client.fixLeaks({ scanStartedAt: takenAt, findings })).outcomes;
}
