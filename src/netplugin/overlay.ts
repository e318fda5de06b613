// The VXLAN overlay between nodes, flannel's vxlan backend done by hand: one VXLAN device per node with
// learning off; for every other node a route to its pod block via that node's VTEP address (the block's
// network address, onlink), a permanent neighbor entry for that address with the node's VTEP MAC, and an
// FDB entry sending that MAC to the node's underlay IP. In dual stack the same again for the IPv6 block,
// carried over the same (IPv4) underlay. Programmed from the etcd node registry.
import { blocksOfNode } from '../etcd/layout';
import type { NodeRecord } from '../etcd/records';
import { bigIntToIpv6, intToIpv4, parseCidr4, parseCidr6 } from '../ip/ip';
import { type IpLink, ipAsync } from '../linux/iproute';

const ip = (args: string[]) => ipAsync(args);
const bridge = (args: string[]) => ipAsync(args, 'bridge');

export const VXLAN_OVERHEAD = 50; // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8

export interface OverlayConfig {
  device: string;
  vni: number;
  port: number;
  nodeIp: string;
}

/** The VTEP address of a block: its network address, as flannel uses x.y.z.0/32 (and the IPv6 block's, /128). */
const vtepAddress = (block: string) => (block.includes(':') ? bigIntToIpv6(parseCidr6(block).network) : intToIpv4(parseCidr4(block).network));

/** The underlay device holding `nodeIp`, and its MTU. */
export async function underlayOf(nodeIp: string): Promise<{ ifname: string; mtu: number }> {
  const links = JSON.parse(await ip(['-j', 'addr', 'show'])) as IpLink[];
  const link = links.find((l) => l.addr_info?.some((a) => a.local === nodeIp));
  if (!link) throw new Error(`--node-ip ${nodeIp} is on no interface of this network namespace`);
  return { ifname: link.ifname, mtu: link.mtu };
}

export class Overlay {
  private readonly peers = new Map<string, NodeRecord>();

  constructor(private readonly cfg: OverlayConfig) {}

  /** Creates (or re-uses) the VXLAN device; returns its MAC, which this node registers as its VTEP MAC. */
  async ensureDevice(underlay: { ifname: string; mtu: number }): Promise<string> {
    const { device, vni, port, nodeIp } = this.cfg;
    const existing = await ip(['-j', '-d', 'link', 'show', 'dev', device]).catch(() => undefined);
    const info = existing ? (JSON.parse(existing) as IpLink[])[0] : undefined;
    const matches =
      info?.linkinfo?.info_kind === 'vxlan' &&
      info.linkinfo.info_data?.id === vni &&
      info.linkinfo.info_data?.local === nodeIp &&
      info.linkinfo.info_data?.port === port;
    if (existing && !matches) await ip(['link', 'del', device]);
    if (!matches) {
      await ip(['link', 'add', device, 'type', 'vxlan', 'id', String(vni), 'local', nodeIp, 'dev', underlay.ifname, 'dstport', String(port), 'nolearning']);
    }
    await ip(['link', 'set', device, 'mtu', String(underlay.mtu - VXLAN_OVERHEAD), 'up']);
    const [link] = JSON.parse(await ip(['-j', 'link', 'show', 'dev', device])) as IpLink[];
    return link.address ?? '';
  }

  /** This node's VTEP addresses, once its blocks are known. */
  async assignVteps(blocks: string[]): Promise<void> {
    for (const b of blocks) {
      const v6 = b.includes(':');
      await ip([...(v6 ? ['-6'] : []), 'addr', 'replace', `${vtepAddress(b)}/${v6 ? 128 : 32}`, 'dev', this.cfg.device, ...(v6 ? ['nodad'] : [])]);
    }
  }

  /** Programs (or re-programs) the routes, neighbor and FDB entries for another node. */
  async addPeer(p: NodeRecord): Promise<void> {
    const old = this.peers.get(p.name);
    if (old && old.block === p.block && old.block6 === p.block6 && old.vtepMac === p.vtepMac && old.nodeIp === p.nodeIp) return;
    if (old) await this.removePeer(p.name);
    const { device } = this.cfg;
    await bridge(['fdb', 'replace', p.vtepMac, 'dev', device, 'dst', p.nodeIp, 'self', 'permanent']);
    for (const block of blocksOfNode(p)) {
      const family = block.includes(':') ? ['-6'] : [];
      const vtep = vtepAddress(block);
      await ip([...family, 'neigh', 'replace', vtep, 'lladdr', p.vtepMac, 'dev', device, 'nud', 'permanent']);
      await ip([...family, 'route', 'replace', block, 'via', vtep, 'dev', device, 'onlink']);
    }
    this.peers.set(p.name, p);
  }

  /** Removes what addPeer programmed; a node that left takes its routes with it. */
  async removePeer(name: string): Promise<void> {
    const p = this.peers.get(name);
    if (!p) return;
    const { device } = this.cfg;
    const quiet = (f: Promise<unknown>) => f.catch(() => undefined);
    for (const block of blocksOfNode(p)) {
      const family = block.includes(':') ? ['-6'] : [];
      await quiet(ip([...family, 'route', 'del', block, 'dev', device]));
      await quiet(ip([...family, 'neigh', 'del', vtepAddress(block), 'dev', device]));
    }
    await quiet(bridge(['fdb', 'del', p.vtepMac, 'dev', device, 'dst', p.nodeIp, 'self']));
    this.peers.delete(name);
  }

  peerNames(): string[] {
    return [...this.peers.keys()];
  }
}
