// IPv4 as 32-bit integers and IPv6 as BigInt: allocation is arithmetic, not string scanning. The text checks
// are here rather than node:net's: the exec'd adapter uses them, and loading node:net costs it several ms.

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** A dotted-quad IPv4 address (no leading zeros, as node:net's isIPv4). */
export const isIPv4 = (s: string): boolean => IPV4.test(s);

/** An IPv6 address in any RFC 4291 text form, a trailing dotted quad included (no zone). */
export function isIPv6(s: string): boolean {
  let text = s;
  if (s.includes('.')) {
    const at = s.lastIndexOf(':');
    if (at < 0 || !isIPv4(s.slice(at + 1))) return false;
    text = `${s.slice(0, at + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const all = halves.flatMap(groups);
  if (!all.every((g) => HEXTET.test(g))) return false;
  return halves.length === 2 ? all.length < 8 : all.length === 8;
}

export interface Cidr4 {
  network: number;
  prefix: number;
  broadcast: number;
}
export interface Cidr6 {
  network: bigint;
  prefix: number;
  last: bigint;
}

export function ipv4ToInt(ip: string): number {
  if (!isIPv4(ip)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function splitCidr(cidr: string): [string, number] {
  const [ip, len, extra] = cidr.split('/');
  const prefix = Number(len);
  if (extra !== undefined || len === undefined || !/^\d+$/.test(len)) throw new Error(`${JSON.stringify(cidr)} is not in CIDR form`);
  return [ip, prefix];
}

/** A CIDR of either family: its network (host bits cleared) as a number of `bits` bits, and its prefix. */
export interface Cidr {
  family: 4 | 6;
  bits: 32 | 128;
  network: bigint;
  prefix: number;
}

/** The one CIDR parser: an address of either family, a prefix no longer than the address. */
export function parseCidr(text: string): Cidr {
  const [ip, prefix] = splitCidr(text);
  const family = ip.includes(':') ? 6 : 4;
  // each conversion refuses an address that is not of its family, by name
  const address = family === 4 ? BigInt(ipv4ToInt(ip)) : ipv6ToBigInt(ip);
  const bits = family === 4 ? 32 : 128;
  if (prefix > bits) throw new Error(`${JSON.stringify(text)} has a prefix longer than the address`);
  const host = BigInt(bits - prefix);
  return { family, bits, network: (address >> host) << host, prefix };
}

/**
 * The prefix lengths this project accepts, in one place: a pod subnet leaves room for a gateway and pods
 * (IPv4 /30 at most; IPv6 from /64, the SLAAC boundary, to /126), a cluster block the same with room for a
 * node's pods (IPv4 /28, IPv6 /120 at most).
 */
export const PREFIX_LIMITS = {
  subnet: { 4: [8, 30], 6: [64, 126] },
  block: { 4: [8, 28], 6: [64, 120] },
} as const;

export function parseCidr4(cidr: string): Cidr4 {
  const c = parseCidr(cidr);
  const [min, max] = PREFIX_LIMITS.subnet[4];
  if (c.family !== 4) throw new Error(`${JSON.stringify(cidr)} is not an IPv4 CIDR`);
  if (c.prefix < min || c.prefix > max) throw new Error(`IPv4 subnet ${cidr}: prefix must be between /${min} and /${max}`);
  const network = Number(c.network);
  return { network, prefix: c.prefix, broadcast: network + 2 ** (32 - c.prefix) - 1 };
}

export function ipv6ToBigInt(ip: string): bigint {
  if (!isIPv6(ip)) throw new Error(`${JSON.stringify(ip)} is not an IPv6 address`);
  let text = ip;
  if (text.includes('.')) {
    // a trailing dotted quad (::ffff:1.2.3.4) is two more groups
    const v4 = ipv4ToInt(text.slice(text.lastIndexOf(':') + 1));
    text = `${text.slice(0, text.lastIndexOf(':') + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** RFC 5952 text: lower case, the longest run (>= 2) of zero groups as "::". */
export function bigIntToIpv6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function parseCidr6(cidr: string): Cidr6 {
  const c = parseCidr(cidr);
  const [min, max] = PREFIX_LIMITS.subnet[6];
  if (c.family !== 6) throw new Error(`${JSON.stringify(cidr)} is not an IPv6 CIDR`);
  if (c.prefix < min || c.prefix > max) throw new Error(`IPv6 subnet ${cidr}: prefix must be between /${min} and /${max}`);
  return { network: c.network, prefix: c.prefix, last: c.network + (1n << BigInt(128 - c.prefix)) - 1n };
}

export function ipv4Bytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function ipv6Bytes(n: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(n >> 64n, 0);
  b.writeBigUInt64BE(n & 0xffffffffffffffffn, 8);
  return b;
}

/** An address in text form (v4 or v6) as the kernel takes it: 4 or 16 bytes, network order. */
export function ipToBytes(ip: string): Buffer {
  return isIPv4(ip) ? ipv4Bytes(ipv4ToInt(ip)) : ipv6Bytes(ipv6ToBigInt(ip));
}

/** An address as the kernel reports it (4 or 16 bytes) in text form. */
export function bytesToIp(b: Buffer): string {
  return b.length === 4 ? intToIpv4(b.readUInt32BE(0)) : bigIntToIpv6((b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8));
}

/** A MAC in colon-separated text as the kernel takes it: six bytes. */
export const macToBytes = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

/** A MAC as the kernel reports it (bytes) in lower-case colon-separated text. */
export const bytesToMac = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** A stable MAC for a pod interface from its IPv4 address, as the reference bridge plugin does: 0a:58:<ip>. */
export function macForIpv4(ip: number): string {
  return bytesToMac(Buffer.concat([Buffer.from([0x0a, 0x58]), ipv4Bytes(ip)]));
}

/** True when `ip` (v4 or v6 text) lies in `cidr` (of the same family, any prefix). */
export function inCidr(ip: string, cidr: string): boolean {
  const [net, prefix] = splitCidr(cidr);
  const v4 = isIPv4(ip) && isIPv4(net);
  if (!v4 && !(isIPv6(ip) && isIPv6(net))) return false;
  const hostBits = BigInt((v4 ? 32 : 128) - prefix);
  const n = (x: string) => (v4 ? BigInt(ipv4ToInt(x)) : ipv6ToBigInt(x));
  return n(ip) >> hostBits === n(net) >> hostBits;
}

const MAC_TEXT = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;

/** A MAC a pod interface can have, as lower-case colon-separated text; throws the reason it cannot. */
export function parseUnicastMac(text: string): string {
  if (!MAC_TEXT.test(text)) throw new Error(`${JSON.stringify(text)} is not a MAC address (six hex octets)`);
  const mac = text.toLowerCase().replaceAll('-', ':');
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new Error(`${mac} is a multicast address`);
  if (mac === '00:00:00:00:00:00') throw new Error(`${mac} is the zero address`);
  return mac;
}

/** An address with an optional prefix ("10.1.2.3" or "10.1.2.3/24", v4 or v6); throws when it is neither. */
export function parseAddress(text: string): { family: 4 | 6; address: string; prefix?: number } {
  const [address, len, extra] = text.split('/');
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (!family || extra !== undefined || (len !== undefined && !/^\d{1,3}$/.test(len)))
    throw new Error(`${JSON.stringify(text)} is not an IP address (with an optional /prefix)`);
  const prefix = len === undefined ? undefined : Number(len);
  if (prefix !== undefined && prefix > (family === 4 ? 32 : 128)) throw new Error(`${JSON.stringify(text)} has a prefix longer than the address`);
  return { family, address: family === 6 ? bigIntToIpv6(ipv6ToBigInt(address)) : address, ...(prefix === undefined ? {} : { prefix }) };
}
