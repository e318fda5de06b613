// rtnetlink through the `netlink` package: the one place in src/ that talks to the kernel's routing socket.
// The package reports a kernel refusal only as the text "Request rejected: EEXIST"; every request made here
// goes through `request`, which reads that errno once into a KernelError (step, errno, cause), so callers
// compare `err.errno` and never parse messages. It also builds the one piece the package leaves raw:
// IFLA_LINKINFO for bridges, bridge ports and veth pairs (vxlan.ts adds VXLAN devices).
import { createRtNetlink, Flags, FlagsNew, type RtNetlinkSocket, type rt } from 'netlink';

export type { RtNetlinkSocket };
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_ADDRESS = 1;
const IFLA_NET_NS_FD = 28;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;
const IFLA_BRPORT_MODE = 4;
const VETH_INFO_PEER = 1;
const IFINFOMSG_LEN = 16;
/** RT_TABLE_MAIN: the routing table `ip route` shows. */
export const MAIN_TABLE = 254;
/** The loopback device is ifindex 1 in every network namespace (net/core/dev.c numbers it first). */
export const LOOPBACK_INDEX = 1;

/** The errno names this project acts on; any other refusal keeps its name too. */
export type Errno = 'EEXIST' | 'ENODEV' | 'ENOENT' | 'EPERM' | 'EBUSY' | 'ENOBUFS' | 'ETIMEDOUT' | (string & {});

/** A request the kernel refused (errno set) or that failed on the way (errno undefined, e.g. a timeout). */
export class KernelError extends Error {
  constructor(
    readonly step: string,
    readonly errno: Errno | undefined,
    cause: unknown,
  ) {
    super(`${step}: ${errno ?? (cause instanceof Error ? cause.message : String(cause))}`, { cause });
    this.name = 'KernelError';
  }
}

/** Awaits one request and names it: a refusal becomes a KernelError carrying the kernel's errno. */
export async function request<T>(step: string, pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof KernelError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    // the only place the package's message text is read
    const errno = /Request rejected: (\w+)/.exec(message)?.[1] ?? (/timed? ?out/i.test(message) ? 'ETIMEDOUT' : undefined);
    throw new KernelError(step, errno, err);
  }
}

/** The errno of a failure from `request`, if the kernel refused it. */
export const errnoOf = (err: unknown): Errno | undefined => (err instanceof KernelError ? err.errno : undefined);

export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
export const cstr = (s: string) => Buffer.from(`${s}\0`);

/** The attributes of a nested attribute's payload (what the package leaves raw, e.g. IFLA_LINKINFO), by type. */
export function nestedAttrs(payload: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let at = 0; at + 4 <= payload.length; ) {
    const len = payload.readUInt16LE(at);
    if (len < 4) break;
    out.set(payload.readUInt16LE(at + 2) & 0x3fff, payload.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

export function bridgeLinkInfo(): Buffer {
  return attr(IFLA_INFO_KIND, cstr('bridge'));
}

/**
 * IFLA_LINKINFO for a veth whose peer is born, already named and addressed, in the network namespace of the
 * open file `netnsFd`: the very namespace the caller opened and verified, whatever a PID or a thread in
 * it does meanwhile. The peer cannot be born up: the kernel configures it before linking it to its other
 * end (veth_open: ENOTCONN).
 */
export function vethLinkInfo(peer: { ifname: string; netnsFd: number; mtu: number; mac: Buffer }): Buffer {
  const peerMsg = Buffer.concat([
    Buffer.alloc(IFINFOMSG_LEN),
    attr(IFLA_IFNAME, cstr(peer.ifname)),
    attr(IFLA_NET_NS_FD, u32(peer.netnsFd)),
    attr(IFLA_MTU, u32(peer.mtu)),
    attr(IFLA_ADDRESS, peer.mac),
  ]);
  return Buffer.concat([attr(IFLA_INFO_KIND, cstr('veth')), attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerMsg))]);
}

/** IFLA_LINKINFO that sets a bridge port's hairpin mode (what `ip link set X type bridge_slave hairpin on` sends). */
export function hairpinLinkInfo(on: boolean): Buffer {
  return Buffer.concat([attr(IFLA_INFO_SLAVE_KIND, cstr('bridge')), attr(IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, Buffer.from([on ? 1 : 0])))]);
}

/**
 * A long-lived rtnetlink socket in the caller's network namespace. If replies overflow its receive buffer the
 * kernel drops them and reports ENOBUFS: that is heard (an unheard 'error' would abort the process inside the
 * addon), and the requests whose replies were dropped fail by timeout instead of hanging.
 */
export function openSocket(onError: (err: Error) => void): RtNetlinkSocket {
  const sock = createRtNetlink();
  sock.socket.on('error', onError);
  return sock;
}

export const REQUEST_TIMEOUT = { timeout: 5_000 };
/** The ifinfomsg fields of a link created (or set) up. */
export const LINK_UP = { flags: { up: true as const }, change: { up: true as const } };
export const CREATE_EXCL = { ...REQUEST_TIMEOUT, flags: FlagsNew.CREATE | FlagsNew.EXCL };
/** CREATE_EXCL, and the kernel answers with the link it made (its IFLA_LINK: a veth's peer's ifindex). */
export const CREATE_EXCL_ECHO = { ...REQUEST_TIMEOUT, flags: FlagsNew.CREATE | FlagsNew.EXCL | Flags.ECHO };
/** Create or replace (routes, neighbours, FDB entries). */
export const CREATE_REPLACE = { ...REQUEST_TIMEOUT, flags: FlagsNew.CREATE | FlagsNew.REPLACE };

/** Closes a socket outside any native callback of the addon (it drains microtasks inside them). */
export function closeSocket(sock: RtNetlinkSocket): void {
  setImmediate(() => sock.socket.close());
}

/** The address family of an address as the kernel takes it (4 or 16 bytes). */
export const familyOf = (ip: Buffer): number => (ip.length === 4 ? AF_INET : AF_INET6);

/** An address (4 or 16 bytes) with its prefix on a link; IPv6 without duplicate address detection, so it is usable at once. */
export function newAddress(
  sock: RtNetlinkSocket,
  step: string,
  index: number,
  address: { bytes: Buffer; prefix: number },
  opts: typeof CREATE_EXCL | typeof CREATE_REPLACE,
): Promise<unknown> {
  const family = familyOf(address.bytes);
  const nodad = family === AF_INET6 ? { flags: { nodad: true as const } } : {};
  const { bytes } = address;
  return request(step, sock.newAddress({ family, prefixlen: address.prefix, index, ...nodad }, { address: bytes, local: bytes, ...nodad }, opts));
}

export async function linkByName(sock: RtNetlinkSocket, ifname: string): Promise<rt.LinkMessage | undefined> {
  try {
    const [link] = await request(`look up ${ifname}`, sock.getLink({}, { ifname }, REQUEST_TIMEOUT));
    return link;
  } catch (err) {
    if (errnoOf(err) === 'ENODEV') return undefined;
    throw err;
  }
}
