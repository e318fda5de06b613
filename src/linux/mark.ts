// The ownership mark the netplugin writes into a host veth's IFLA_IFALIAS once its attachment is ready: the
// attachment's identity and addresses, kept by the kernel where a lost or damaged store cannot take them.
// At start the daemon compares the kernel with its store and adopts a marked veth the store lacks; contivctl
// leaks tells ours from a look-alike by it. A veth being made is not marked yet: it is born in the daemon's
// pending group (see linkGroups), so a half-made ADD is never mistaken for a live pod.
import { isIPv4, isIPv6 } from '../ip/ip';
import { hostVethName, interfaceNameProblem, isContainerId } from './ifname';

export interface OwnershipMark {
  containerId: string;
  ifname: string;
  ipv4: string;
  ipv6?: string;
  mac: string;
  /** When the attachment was made (ms since the epoch): a DEL queued before it never removes it. */
  createdAtMs: number;
}

const MAGIC = 'ctv1';
/** The kernel's IFALIASZ is 256 bytes with the terminating NUL. */
export const MAX_MARK_BYTES = 255;
/** The longest container id a mark can carry next to the longest addresses, MAC and interface name. */
export const MAX_CONTAINER_ID_BYTES = 128;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

export function formatMark(m: OwnershipMark): string {
  const text = [MAGIC, m.createdAtMs, m.ipv4, m.ipv6 ?? '-', m.mac, m.ifname, m.containerId].join(' ');
  if (Buffer.byteLength(text) > MAX_MARK_BYTES) throw new Error(`ownership mark for ${m.containerId}/${m.ifname} is longer than ${MAX_MARK_BYTES} bytes`);
  return text;
}

/** The mark in an interface alias, or undefined when the alias is not one of ours (anything else, or nothing). */
export function parseMark(alias: string | undefined): OwnershipMark | undefined {
  const f = alias?.split(' ') ?? [];
  if (f.length !== 7 || f[0] !== MAGIC) return undefined;
  const [, created, ipv4, ipv6, mac, ifname, containerId] = f;
  const createdAtMs = Number(created);
  if (!/^\d+$/.test(created) || !Number.isSafeInteger(createdAtMs)) return undefined;
  if (!isIPv4(ipv4) || (ipv6 !== '-' && !isIPv6(ipv6)) || !MAC.test(mac) || interfaceNameProblem(ifname) || !isContainerId(containerId)) return undefined;
  return { containerId, ifname, ipv4, ...(ipv6 === '-' ? {} : { ipv6 }), mac, createdAtMs };
}

/**
 * The mark on a link when it proves the link ours: a valid mark naming the very attachment the link's name is
 * derived from (a mark copied onto another link, or a look-alike name without one, proves nothing).
 */
export function ownershipOf(link: { name: string; alias?: string }): OwnershipMark | undefined {
  const mark = parseMark(link.alias);
  return mark && hostVethName(mark.containerId, mark.ifname) === link.name ? mark : undefined;
}

/**
 * The link groups (IFLA_GROUP) one daemon uses, derived from its bridge's name so that they stay the same
 * across restarts: `pending` holds the veths of ADDs in progress (the kernel honours a group given at
 * creation, an alias only afterwards), `deleting` the veths a DEL is removing, deleted together with one
 * RTM_DELLINK. Either found at start belongs to an operation that was interrupted.
 */
export function linkGroups(bridge: string): { pending: number; deleting: number } {
  // FNV-1a: stable, and far from the small numbers (0 is the default group) people set by hand
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(bridge)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  const base = (0x40000000 | (h & 0x3ffffffe)) >>> 0;
  return { pending: base, deleting: base + 1 };
}
