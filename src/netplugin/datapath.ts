// The kernel side of an attachment: a Linux bridge with the gateway, a veth pair per pod whose host end
// is on the bridge and whose peer is born inside the pod's namespace (by PID) as CNI_IFNAME.
import type { RtNetlinkSocket } from 'netlink';
import { CniError, ErrorCode } from '../errors';
import { bytesToIp, ipv4Bytes, ipv4ToInt, ipv6Bytes, ipv6ToBigInt } from '../ip/ip';
import { isHostVethName } from '../linux/ifname';
import { type NetnsHandle, openNetns } from '../netns/netns';
import { procNetnsPath } from '../netns/path';
import { Limiter } from './mutex';
import {
  AF_INET,
  AF_INET6,
  bridgeLinkInfo,
  CREATE_EXCL,
  CREATE_EXCL_ECHO,
  closeSocket,
  hostSocket,
  LINK_UP,
  LOOPBACK_INDEX,
  linkByName,
  netlinkErrno,
  REQUEST_TIMEOUT,
  socketIn,
  vethLinkInfo,
} from './netlink';

export interface BridgeConfig {
  bridge: string;
  gateway4: string;
  prefix4: number;
  gateway6?: string;
  prefix6?: number;
  mtu: number;
}

export interface PodLink {
  ns: NetnsHandle;
  pid: number;
  hostVeth: string;
  ifname: string;
  mac: string;
  ipv4: { address: string; prefix: number };
  ipv6?: { address: string; prefix: number };
  /** The pod's default routes go on this interface only if it is the pod's first. */
  defaultRoute: boolean;
}

const macBytes = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

function kernelError(step: string, err: unknown): CniError {
  const errno = netlinkErrno(err);
  if (errno === 'EPERM')
    return new CniError(ErrorCode.Io, `${step}: operation not permitted`, 'netplugin needs CAP_NET_ADMIN (add NET_ADMIN to the capabilities)');
  return new CniError(ErrorCode.Io, `${step}: ${(err as Error).message}`);
}

async function addAddress(sock: RtNetlinkSocket, index: number, family: number, bytes: Buffer, prefix: number): Promise<void> {
  try {
    // IPv6 without duplicate address detection, so the address is usable at once
    const nodad = family === AF_INET6 ? { flags: { nodad: true as const } } : {};
    await sock.newAddress({ family, prefixlen: prefix, index, ...nodad }, { address: bytes, local: bytes, ...nodad }, CREATE_EXCL);
  } catch (err) {
    if (netlinkErrno(err) !== 'EEXIST') throw err;
  }
}

async function addDefaultRoute(sock: RtNetlinkSocket, family: number, gateway: Buffer, oif: number): Promise<void> {
  await sock.newRoute({ family, dstLen: 0, table: 254, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST' }, { gateway, oif }, CREATE_EXCL);
}

async function setUp(sock: RtNetlinkSocket, index: number): Promise<void> {
  await sock.setLink({ index, ...LINK_UP }, {}, REQUEST_TIMEOUT);
}

/**
 * Waits for requests sent together on one socket and fails with the first failure, in the order sent.
 * Every promise is waited for: one still pending when the socket closes must not reject unheard.
 */
async function settled<T extends unknown[]>(requests: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(requests);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}

export class Datapath {
  private readonly host: RtNetlinkSocket;
  // Bounds the replies in flight on the host socket so that 100 concurrent ADDs fit its receive buffer.
  private readonly kernel = new Limiter(8);
  private bridgeIndex = 0;

  constructor(
    private readonly cfg: BridgeConfig,
    private readonly onSocketError: (err: Error) => void,
  ) {
    this.host = hostSocket(onSocketError);
  }

  /** The daemon's own network namespace, where the main thread returns after opening a pod's socket. */
  private readonly home = openNetns(procNetnsPath(process.pid), 'netplugin');

  get bridge(): string {
    return this.cfg.bridge;
  }

  /** Creates the bridge if missing, gives it the gateway addresses and brings it up. Idempotent. */
  async ensureBridge(): Promise<void> {
    let link = await linkByName(this.host, this.cfg.bridge);
    if (!link) {
      try {
        await this.host.newLink({}, { ifname: this.cfg.bridge, mtu: this.cfg.mtu, linkinfo: bridgeLinkInfo() }, CREATE_EXCL);
      } catch (err) {
        if (netlinkErrno(err) !== 'EEXIST') throw kernelError(`create bridge ${this.cfg.bridge}`, err);
      }
      link = await linkByName(this.host, this.cfg.bridge);
    }
    if (!link?.data.index) throw new CniError(ErrorCode.Io, `bridge ${this.cfg.bridge} did not appear`);
    this.bridgeIndex = link.data.index;
    await addAddress(this.host, this.bridgeIndex, AF_INET, ipv4Bytes(ipv4ToInt(this.cfg.gateway4)), this.cfg.prefix4);
    if (this.cfg.gateway6 && this.cfg.prefix6) {
      await addAddress(this.host, this.bridgeIndex, AF_INET6, ipv6Bytes(ipv6ToBigInt(this.cfg.gateway6)), this.cfg.prefix6);
    }
    await setUp(this.host, this.bridgeIndex);
  }

  /**
   * Wires one pod. On any failure the host veth (and with it the peer) is removed before the error is
   * returned, so a half-done ADD leaves nothing in the kernel.
   */
  attach(p: PodLink): Promise<void> {
    return this.kernel.run(() => this.attachNow(p));
  }

  private async attachNow(p: PodLink): Promise<void> {
    let peerIndex: number | undefined;
    try {
      // the host end is born up, and the kernel's echo of it names the peer's ifindex in the pod namespace:
      // no lookup and no link-up round trip for either
      const [created] = await this.host.newLink(
        LINK_UP,
        {
          ifname: p.hostVeth,
          mtu: this.cfg.mtu,
          master: this.bridgeIndex,
          linkinfo: vethLinkInfo({ ifname: p.ifname, pid: p.pid, mtu: this.cfg.mtu, mac: macBytes(p.mac) }),
        },
        CREATE_EXCL_ECHO,
      );
      peerIndex = created?.attrs.link?.readUInt32LE(0);
    } catch (err) {
      if (netlinkErrno(err) === 'EEXIST') {
        throw new CniError(ErrorCode.InvalidEnv, `an interface named ${p.ifname} already exists in the pod namespace (or host veth ${p.hostVeth} exists)`);
      }
      throw kernelError(`create veth ${p.hostVeth}`, err);
    }
    try {
      await this.configurePod(p, peerIndex);
    } catch (err) {
      await this.detachNow(p.hostVeth).catch(() => undefined);
      throw err instanceof CniError ? err : kernelError(`configure ${p.ifname} in ${p.ns.path}`, err);
    }
  }

  /**
   * Pod side over an rtnetlink socket opened inside the pod's namespace (CHECK reads addresses the same way).
   * The requests are sent together and the kernel applies them in order (addresses, then link up, then the
   * routes that need both): one round trip. See docs/performance.md for what each step costs.
   */
  private async configurePod(p: PodLink, peerIndex: number | undefined): Promise<void> {
    const pod = socketIn(p.ns, this.home, this.onSocketError);
    try {
      const index = peerIndex ?? (await linkByName(pod, p.ifname))?.data.index;
      if (!index) throw new Error(`${p.ifname} did not appear in ${p.ns.path}`);
      const gateway4 = ipv4Bytes(ipv4ToInt(this.cfg.gateway4));
      const gateway6 = p.ipv6 && this.cfg.gateway6 ? ipv6Bytes(ipv6ToBigInt(this.cfg.gateway6)) : undefined;
      await settled([
        setUp(pod, LOOPBACK_INDEX),
        addAddress(pod, index, AF_INET, ipv4Bytes(ipv4ToInt(p.ipv4.address)), p.ipv4.prefix),
        ...(p.ipv6 ? [addAddress(pod, index, AF_INET6, ipv6Bytes(ipv6ToBigInt(p.ipv6.address)), p.ipv6.prefix)] : []),
        setUp(pod, index),
        ...(p.defaultRoute ? [addDefaultRoute(pod, AF_INET, gateway4, index), ...(gateway6 ? [addDefaultRoute(pod, AF_INET6, gateway6, index)] : [])] : []),
      ]);
    } finally {
      closeSocket(pod);
    }
  }

  /** Deletes the host veth (the kernel deletes its peer); false when it was already gone. */
  detach(hostVeth: string): Promise<boolean> {
    return this.kernel.run(() => this.detachNow(hostVeth));
  }

  private async detachNow(hostVeth: string): Promise<boolean> {
    try {
      // by name (IFLA_IFNAME): no lookup round trip. The kernel's own work (unregistering both ends, RCU
      // grace periods) is ~20 ms here, which every CNI's DEL pays, the Go bridge plugin's included.
      await this.host.delLink({}, { ifname: hostVeth }, REQUEST_TIMEOUT);
      return true;
    } catch (err) {
      if (netlinkErrno(err) === 'ENODEV') return false;
      throw kernelError(`delete ${hostVeth}`, err);
    }
  }

  /** The global-scope CIDRs on `ifname` inside the namespace (for CHECK); none if it cannot be read. */
  async observe(ns: NetnsHandle, ifname: string): Promise<string[]> {
    let pod: RtNetlinkSocket | undefined;
    try {
      pod = socketIn(ns, this.home, this.onSocketError);
      const index = (await linkByName(pod, ifname))?.data.index;
      if (!index) return [];
      const addrs = await pod.getAddresses({}, {}, REQUEST_TIMEOUT);
      return addrs.flatMap((a) =>
        a.data.index === index && a.attrs.address && a.data.scope === 0 ? [`${bytesToIp(a.attrs.address)}/${a.data.prefixlen}`] : [],
      );
    } catch {
      return [];
    } finally {
      if (pod) closeSocket(pod);
    }
  }

  /** Names of our host veths attached to this daemon's bridge. */
  async hostVeths(): Promise<string[]> {
    const links = await this.host.getLinks({}, {}, REQUEST_TIMEOUT);
    return links.flatMap((l) => (l.attrs.master === this.bridgeIndex && l.attrs.ifname && isHostVethName(l.attrs.ifname) ? [l.attrs.ifname] : []));
  }

  close(): void {
    closeSocket(this.host);
    this.home.close();
  }
}
