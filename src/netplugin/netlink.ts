// rtnetlink through the `netlink` package, plus the one piece it leaves raw: IFLA_LINKINFO for
// bridges and veth pairs (with the peer created directly in the pod's namespace by PID).
import { createRtNetlink, Flags, FlagsNew, type RtNetlinkSocket, type rt } from 'netlink';
import { enterNetns, type NetnsHandle } from '../netns/netns';

export const AF_INET = 2;
export const AF_INET6 = 10;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_ADDRESS = 1;
const IFLA_NET_NS_PID = 19;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFINFOMSG_LEN = 16;
/** The loopback device is ifindex 1 in every network namespace (net/core/dev.c numbers it first). */
export const LOOPBACK_INDEX = 1;

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`);

export function bridgeLinkInfo(): Buffer {
  return attr(IFLA_INFO_KIND, cstr('bridge'));
}

/**
 * IFLA_LINKINFO for a veth whose peer is born in the namespace of `peerPid`, already named and addressed. The
 * peer cannot be born up: the kernel configures it before linking it to its other end (veth_open: ENOTCONN).
 */
export function vethLinkInfo(peer: { ifname: string; pid: number; mtu: number; mac: Buffer }): Buffer {
  const peerMsg = Buffer.concat([
    Buffer.alloc(IFINFOMSG_LEN),
    attr(IFLA_IFNAME, cstr(peer.ifname)),
    attr(IFLA_NET_NS_PID, u32(peer.pid)),
    attr(IFLA_MTU, u32(peer.mtu)),
    attr(IFLA_ADDRESS, peer.mac),
  ]);
  return Buffer.concat([attr(IFLA_INFO_KIND, cstr('veth')), attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peerMsg))]);
}

/** The errno name in the netlink package's "Request rejected: EEXIST" errors. */
export function netlinkErrno(err: unknown): string | undefined {
  return /Request rejected: (\w+)/.exec(String((err as Error)?.message ?? err))?.[1];
}

/**
 * The daemon's long-lived rtnetlink socket. If replies overflow its receive buffer the kernel drops them
 * and reports ENOBUFS: that is logged (an unheard 'error' would abort the process inside the addon), and
 * the requests whose replies were dropped fail by timeout instead of hanging.
 */
export function hostSocket(onError: (err: Error) => void): RtNetlinkSocket {
  const sock = createRtNetlink();
  sock.socket.on('error', onError);
  return sock;
}

/**
 * An rtnetlink socket inside a pod's namespace. A socket belongs to the namespace of the thread that
 * creates it: the main thread enters `ns`, creates it and goes back `home` in one synchronous step, so
 * nothing else on the event loop ever runs in the pod's namespace. Errors are heard, as on the host socket.
 */
export function socketIn(ns: NetnsHandle, home: NetnsHandle, onError: (err: Error) => void): RtNetlinkSocket {
  enterNetns(ns);
  try {
    const sock = createRtNetlink();
    sock.socket.on('error', onError);
    return sock;
  } finally {
    enterNetns(home);
  }
}

export const REQUEST_TIMEOUT = { timeout: 5_000 };
/** The ifinfomsg fields of a link created (or set) up. */
export const LINK_UP = { flags: { up: true as const }, change: { up: true as const } };
export const CREATE_EXCL = { ...REQUEST_TIMEOUT, flags: FlagsNew.CREATE | FlagsNew.EXCL };
/** CREATE_EXCL, and the kernel answers with the link it made (its IFLA_LINK: a veth's peer's ifindex). */
export const CREATE_EXCL_ECHO = { ...REQUEST_TIMEOUT, flags: FlagsNew.CREATE | FlagsNew.EXCL | Flags.ECHO };

/** Closes a socket outside any native callback of the addon (it drains microtasks inside them). */
export function closeSocket(sock: RtNetlinkSocket): void {
  setImmediate(() => sock.socket.close());
}

export async function linkByName(sock: RtNetlinkSocket, ifname: string): Promise<rt.LinkMessage | undefined> {
  try {
    const [link] = await sock.getLink({}, { ifname }, REQUEST_TIMEOUT);
    return link;
  } catch (err) {
    if (netlinkErrno(err) === 'ENODEV') return undefined;
    throw err;
  }
}
