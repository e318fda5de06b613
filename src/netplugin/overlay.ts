// The VXLAN overlay between nodes, flannel's vxlan backend done by hand: one VXLAN device per node with
// learning off; for every other node a route to its pod block via that node's VTEP address (the block's
// network address, onlink), a permanent neighbor entry for that address with the node's VTEP MAC, and an
// FDB entry sending that MAC to the node's underlay IP. In dual stack the same again for the IPv6 block,
// carried over the same (IPv4) underlay. Programmed from the etcd node registry, over rtnetlink
// (src/linux/vxlan.ts).
import { blocksOfNode } from '../etcd/layout';
import type { NodeRecord } from '../etcd/records';
import { bigIntToIpv6, intToIpv4, parseCidr4, parseCidr6 } from '../ip/ip';
import { closeSocket, openSocket, type RtNetlinkSocket } from '../linux/rtnetlink';
import { deviceWithAddress, ensureVxlan, type Peer, removePeer, replaceHostAddress, replacePeer } from '../linux/vxlan';
import type { Logger } from '../log/logger';

export const VXLAN_OVERHEAD = 50; // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8

export interface OverlayConfig {
  device: string;
  vni: number;
  port: number;
  nodeIp: string;
}

/** The block as network and prefix, and its VTEP address: its network address, as flannel uses x.y.z.0/32 (/128 in IPv6). */
function blockOf(cidr: string): { network: string; prefix: number } {
  if (cidr.includes(':')) {
    const c = parseCidr6(cidr);
    return { network: bigIntToIpv6(c.network), prefix: c.prefix };
  }
  const c = parseCidr4(cidr);
  return { network: intToIpv4(c.network), prefix: c.prefix };
}

/** What addPeer programs for one node: its VTEP MAC's FDB entry, and per block (IPv4, then IPv6 in dual stack) its route and neighbour. */
function peerOf(p: NodeRecord): Peer {
  const blocks = blocksOfNode(p).map((b) => {
    const block = blockOf(b);
    return { block, vtep: block.network };
  });
  return { vtepMac: p.vtepMac, underlayIp: p.nodeIp, blocks };
}

export class Overlay {
  private readonly peers = new Map<string, NodeRecord>();
  private readonly sock: RtNetlinkSocket;
  private index = 0;

  constructor(
    private readonly cfg: OverlayConfig,
    private readonly log: Logger,
    onSocketError: (err: Error) => void,
  ) {
    this.sock = openSocket(onSocketError);
  }

  /** The underlay device holding the node's IP, and its MTU. */
  async underlay(): Promise<{ index: number; ifname: string; mtu: number }> {
    const found = await deviceWithAddress(this.sock, this.cfg.nodeIp);
    if (!found) throw new Error(`--node-ip ${this.cfg.nodeIp} is on no interface of this network namespace`);
    return found;
  }

  /** Creates (or re-uses) the VXLAN device; returns its MAC, which this node registers as its VTEP MAC. */
  async ensureDevice(underlay: { index: number; mtu: number }): Promise<string> {
    const { device, vni, port, nodeIp } = this.cfg;
    const made = await ensureVxlan(this.sock, { device, vni, port, local: nodeIp, underlayIndex: underlay.index, mtu: underlay.mtu - VXLAN_OVERHEAD }, (why) =>
      this.log.warn('replacing the VXLAN device', { device, why }),
    );
    this.index = made.index;
    return made.mac;
  }

  /** This node's VTEP addresses, once its blocks are known. */
  async assignVteps(blocks: string[]): Promise<void> {
    for (const b of blocks) await replaceHostAddress(this.sock, this.index, blockOf(b).network);
  }

  /** Programs (or re-programs) the routes, neighbor and FDB entries for another node. */
  async addPeer(p: NodeRecord): Promise<void> {
    const old = this.peers.get(p.name);
    if (old && old.block === p.block && old.block6 === p.block6 && old.vtepMac === p.vtepMac && old.nodeIp === p.nodeIp) return;
    if (old) await this.removePeer(p.name);
    await replacePeer(this.sock, this.index, peerOf(p));
    this.peers.set(p.name, p);
  }

  /** Removes what addPeer programmed; a node that left takes its routes with it. */
  async removePeer(name: string): Promise<void> {
    const p = this.peers.get(name);
    if (!p) return;
    await removePeer(this.sock, this.index, peerOf(p));
    this.peers.delete(name);
  }

  peerNames(): string[] {
    return [...this.peers.keys()];
  }

  close(): void {
    closeSocket(this.sock);
  }
}
