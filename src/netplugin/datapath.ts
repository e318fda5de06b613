// The kernel side of an attachment: a Linux bridge with the gateway, a veth pair per pod whose host end
// is on the bridge and whose peer is born inside the pod's namespace as CNI_IFNAME. The host end carries the
// daemon's ownership of it: born in the daemon's pending group, marked (IFLA_IFALIAS) once its attachment
// is ready, so that the kernel can be compared with the store at start (src/linux/mark.ts).
import { CodedFailure, ErrorCode } from '../errors';
import { bytesToIp, ipToBytes, macToBytes } from '../ip/ip';
import { linkGroups } from '../linux/mark';
import {
  AF_INET,
  AF_INET6,
  bridgeLinkInfo,
  CREATE_EXCL,
  CREATE_EXCL_ECHO,
  closeSocket,
  errnoOf,
  hairpinLinkInfo,
  KernelError,
  LINK_UP,
  LOOPBACK_INDEX,
  linkByName,
  MAIN_TABLE,
  newAddress,
  openSocket,
  REQUEST_TIMEOUT,
  type RtNetlinkSocket,
  request,
  vethLinkInfo,
} from '../linux/rtnetlink';
import { type NetnsHandle, openNetns } from '../netns/netns';
import { procNetnsPath } from '../netns/path';
import { Limiter } from './concurrency';
import { socketIn } from './podns';
import { LinkReaper } from './reaper';

export interface BridgeConfig {
  bridge: string;
  gateway4: string;
  prefix4: number;
  gateway6?: string;
  prefix6?: number;
  mtu: number;
}

export interface PodLink {
  /** The pod's namespace, opened and verified: the peer is created in it by this fd. */
  ns: NetnsHandle;
  hostVeth: string;
  ifname: string;
  mac: string;
  ipv4: { address: string; prefix: number };
  ipv6?: { address: string; prefix: number };
  /** Whether this interface carries the pod's default routes (isDefaultGateway). */
  defaultRoute: boolean;
  /** Whether the bridge may send a frame back out of the port it came in on (hairpinMode). */
  hairpin: boolean;
}

/** A link enslaved to the daemon's bridge, with what marks it as ours. */
export interface BridgePort {
  name: string;
  /** IFLA_IFALIAS: the ownership mark of a ready attachment, or anything else. */
  alias?: string;
  group: number;
}

/** A kernel refusal as the failure a request is answered with (code 5), the KernelError kept as its cause. */
function kernelError(step: string, err: unknown): CodedFailure {
  if (errnoOf(err) === 'EPERM')
    return new CodedFailure(ErrorCode.Io, `${step}: operation not permitted`, 'netplugin needs CAP_NET_ADMIN (add NET_ADMIN to the capabilities)', {
      cause: err,
    });
  const message = err instanceof KernelError ? (err.errno ?? (err.cause as Error)?.message) : (err as Error).message;
  return new CodedFailure(ErrorCode.Io, `${step}: ${message}`, undefined, { cause: err });
}

async function addAddress(sock: RtNetlinkSocket, index: number, bytes: Buffer, prefix: number): Promise<void> {
  try {
    await newAddress(sock, 'add address', index, { bytes, prefix }, CREATE_EXCL);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  }
}

async function addDefaultRoute(sock: RtNetlinkSocket, family: number, gateway: Buffer, oif: number): Promise<void> {
  const step = `add the ${family === AF_INET ? 'IPv4' : 'IPv6'} default route`;
  try {
    await request(
      step,
      sock.newRoute({ family, dstLen: 0, table: MAIN_TABLE, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST' }, { gateway, oif }, CREATE_EXCL),
    );
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
    throw new CodedFailure(
      ErrorCode.InvalidConfig,
      `${step}: the pod already has one (another interface or network owns it)`,
      'set isDefaultGateway to false on all but one of the pod’s networks',
      { cause: err },
    );
  }
}

const setUp = (sock: RtNetlinkSocket, index: number) => request('set link up', sock.setLink({ index, ...LINK_UP }, {}, REQUEST_TIMEOUT));

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
  /** Bounds the attachments in flight on the host socket so that 100 concurrent ADDs fit its receive buffer. */
  private readonly inFlight = new Limiter(8);
  private bridgeIndex = 0;
  readonly groups: { pending: number; deleting: number };
  /** The gateways as the kernel takes them, converted once. */
  private readonly gateway4: Buffer;
  private readonly gateway6?: Buffer;
  /** The daemon's own network namespace, where the main thread returns after opening a pod's socket. */
  private readonly home = openNetns(procNetnsPath(process.pid), 'netplugin');

  /** Deletes host veths off the event loop, in batches (reaper.ts). */
  private readonly reaper: LinkReaper;

  constructor(
    private readonly cfg: BridgeConfig,
    private readonly onSocketError: (err: Error) => void,
  ) {
    this.host = openSocket(onSocketError);
    this.gateway4 = ipToBytes(cfg.gateway4);
    this.gateway6 = cfg.gateway6 ? ipToBytes(cfg.gateway6) : undefined;
    this.groups = linkGroups(cfg.bridge);
    this.reaper = new LinkReaper(this.groups.deleting, onSocketError);
  }

  /** Creates the bridge if missing, gives it the gateway addresses and brings it up. Idempotent. */
  async ensureBridge(): Promise<void> {
    let link = await linkByName(this.host, this.cfg.bridge);
    if (!link) {
      try {
        await request(
          `create bridge ${this.cfg.bridge}`,
          this.host.newLink({}, { ifname: this.cfg.bridge, mtu: this.cfg.mtu, linkinfo: bridgeLinkInfo() }, CREATE_EXCL),
        );
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw kernelError(`create bridge ${this.cfg.bridge}`, err);
      }
      link = await linkByName(this.host, this.cfg.bridge);
    }
    if (!link?.data.index) throw new CodedFailure(ErrorCode.Io, `bridge ${this.cfg.bridge} did not appear`);
    this.bridgeIndex = link.data.index;
    await addAddress(this.host, this.bridgeIndex, this.gateway4, this.cfg.prefix4);
    if (this.gateway6 && this.cfg.prefix6) await addAddress(this.host, this.bridgeIndex, this.gateway6, this.cfg.prefix6);
    await setUp(this.host, this.bridgeIndex);
  }

  /**
   * Wires one pod. On any failure the host veth (and with it the peer) is removed before the error is
   * returned, so a half-done ADD leaves nothing in the kernel.
   */
  attach(p: PodLink): Promise<void> {
    return this.inFlight.run(() => this.attachNow(p));
  }

  private async attachNow(p: PodLink): Promise<void> {
    let created: { index?: number; peerIndex?: number };
    try {
      // the host end is born up, on the bridge, in the pending group; the kernel's echo of it names the
      // peer's ifindex in the pod namespace: no lookup and no link-up round trip for either
      const [link] = await request(
        `create veth ${p.hostVeth}`,
        this.host.newLink(
          LINK_UP,
          {
            ifname: p.hostVeth,
            mtu: this.cfg.mtu,
            master: this.bridgeIndex,
            group: this.groups.pending,
            linkinfo: vethLinkInfo({ ifname: p.ifname, netnsFd: p.ns.fd, mtu: this.cfg.mtu, mac: macToBytes(p.mac) }),
          },
          CREATE_EXCL_ECHO,
        ),
      );
      created = { index: link?.data.index, peerIndex: link?.attrs.link?.readUInt32LE(0) };
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') {
        throw new CodedFailure(
          ErrorCode.InvalidEnv,
          `an interface named ${p.ifname} already exists in the pod namespace (or host veth ${p.hostVeth} exists)`,
          undefined,
          { cause: err },
        );
      }
      throw kernelError(`create veth ${p.hostVeth}`, err);
    }
    try {
      await settled([this.configureHostPort(p, created.index), this.configurePod(p, created.peerIndex)]);
    } catch (err) {
      await this.detach(p.hostVeth).catch(() => undefined);
      throw err instanceof CodedFailure ? err : kernelError(`configure ${p.ifname} in ${p.ns.path}`, err);
    }
  }

  /**
   * The bridge port's settings beyond what creation sets (hairpin), on the host socket while the pod side runs.
   * Slave data is applied by RTM_NEWLINK on an existing link (RTM_SETLINK ignores IFLA_LINKINFO), as
   * `ip link set <veth> type bridge_slave hairpin on` sends it; without NLM_F_CREATE it never makes a link.
   */
  private async configureHostPort(p: PodLink, index: number | undefined): Promise<void> {
    if (!p.hairpin) return;
    await request(
      `set hairpin on ${p.hostVeth}`,
      this.host.newLink(index ? { index } : {}, { ...(index ? {} : { ifname: p.hostVeth }), linkinfo: hairpinLinkInfo(true) }, REQUEST_TIMEOUT),
    );
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
      const { gateway4 } = this;
      const gateway6 = p.ipv6 ? this.gateway6 : undefined;
      await settled([
        setUp(pod, LOOPBACK_INDEX),
        addAddress(pod, index, ipToBytes(p.ipv4.address), p.ipv4.prefix),
        ...(p.ipv6 ? [addAddress(pod, index, ipToBytes(p.ipv6.address), p.ipv6.prefix)] : []),
        setUp(pod, index),
        ...(p.defaultRoute ? [addDefaultRoute(pod, AF_INET, gateway4, index), ...(gateway6 ? [addDefaultRoute(pod, AF_INET6, gateway6, index)] : [])] : []),
      ]);
    } finally {
      closeSocket(pod);
    }
  }

  /** Writes the ownership mark on a host veth and takes it out of the pending group: its attachment is ready. */
  mark(hostVeth: string, mark: string): Promise<void> {
    return this.inFlight.run(async () => {
      try {
        await request(`mark ${hostVeth}`, this.host.setLink({}, { ifname: hostVeth, ifalias: mark, group: 0 }, REQUEST_TIMEOUT));
      } catch (err) {
        throw kernelError(`mark ${hostVeth} as ready`, err);
      }
    });
  }

  /**
   * Deletes the host veth (the kernel deletes its peer); false when it was already gone. The kernel's own work
   * (unregistering both ends, an RCU wait) is ~20 ms here, which every CNI's DEL pays, the Go bridge plugin's
   * included: the reaper pays it off the event loop, once per batch.
   */
  async detach(hostVeth: string): Promise<boolean> {
    try {
      return await this.reaper.delete(hostVeth);
    } catch (err) {
      const errno = (err as { errno?: string }).errno;
      throw kernelError(`delete ${hostVeth}`, errno ? new KernelError(`delete ${hostVeth}`, errno, err) : err);
    }
  }

  /** The global-scope CIDRs on `ifname` inside the namespace (for CHECK); none if it cannot be read. */
  async observe(ns: NetnsHandle, ifname: string): Promise<string[]> {
    let pod: RtNetlinkSocket | undefined;
    try {
      pod = socketIn(ns, this.home, this.onSocketError);
      const index = (await linkByName(pod, ifname))?.data.index;
      if (!index) return [];
      const addrs = await request('list addresses', pod.getAddresses({}, {}, REQUEST_TIMEOUT));
      return addrs.flatMap((a) =>
        a.data.index === index && a.attrs.address && a.data.scope === 0 ? [`${bytesToIp(a.attrs.address)}/${a.data.prefixlen}`] : [],
      );
    } catch {
      return [];
    } finally {
      if (pod) closeSocket(pod);
    }
  }

  /** The links enslaved to this daemon's bridge, with their alias and group. */
  async bridgePorts(): Promise<BridgePort[]> {
    const links = await request('list links', this.host.getLinks({}, {}, REQUEST_TIMEOUT));
    return links.flatMap((l) =>
      l.attrs.master === this.bridgeIndex && l.attrs.ifname ? [{ name: l.attrs.ifname, alias: l.attrs.ifalias, group: l.attrs.group ?? 0 }] : [],
    );
  }

  /** One host veth as it is now: its alias (its ownership mark, once ready) and whether it is on our bridge; undefined when gone. */
  async hostPort(hostVeth: string): Promise<{ alias?: string; onBridge: boolean } | undefined> {
    const link = await linkByName(this.host, hostVeth);
    return link && { alias: link.attrs.ifalias, onBridge: link.attrs.master === this.bridgeIndex };
  }

  async close(): Promise<void> {
    closeSocket(this.host);
    this.home.close();
    await this.reaper.close();
  }
}
