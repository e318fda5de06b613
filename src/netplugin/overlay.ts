// The VXLAN overlay between nodes, flannel's vxlan backend done by hand: one VXLAN device per node with
// learning off; for every other node a route to its pod block via that node's VTEP address (the block's
// network address, onlink), a permanent neighbor entry for that address with the node's VTEP MAC, and an
// FDB entry sending that MAC to the node's underlay IP. Programmed from the etcd node registry.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { intToIpv4, parseCidr4 } from './ip';

const run = promisify(execFile);
const ip = async (args: string[]) => (await run('ip', args)).stdout;

export const VXLAN_OVERHEAD = 50; // outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8

export interface Peer {
  name: string;
  nodeIp: string;
  block: string;
  vtepMac: string;
}

export interface OverlayConfig {
  device: string;
  vni: number;
  port: number;
  nodeIp: string;
  /** This node's pod block: its network address is this node's VTEP address. */
  block: string;
}

/** The VTEP address of a block: its network address, as flannel uses x.y.z.0/32. */
export const vtepAddress = (block: string) => intToIpv4(parseCidr4(block).network);

/** The underlay device holding `nodeIp`, and its MTU. */
export async function underlayOf(nodeIp: string): Promise<{ ifname: string; mtu: number }> {
  const links = JSON.parse(await ip(['-j', 'addr', 'show'])) as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  const link = links.find((l) => l.addr_info?.some((a) => a.local === nodeIp));
  if (!link) throw new Error(`--node-ip ${nodeIp} is on no interface of this network namespace`);
  return { ifname: link.ifname, mtu: link.mtu };
}

export class Overlay {
  private readonly peers = new Map<string, Peer>();

  constructor(private readonly cfg: OverlayConfig) {}

  /** Creates (or re-uses) the VXLAN device with its VTEP address; returns its MAC. */
  async ensureDevice(underlay: { ifname: string; mtu: number }): Promise<string> {
    const { device, vni, port, nodeIp } = this.cfg;
    const existing = await ip(['-j', '-d', 'link', 'show', 'dev', device]).catch(() => undefined);
    const info = existing ? (JSON.parse(existing) as { linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number } } }[])[0] : undefined;
    const matches = info?.linkinfo?.info_kind === 'vxlan' && info.linkinfo.info_data?.id === vni && info.linkinfo.info_data?.local === nodeIp && info.linkinfo.info_data?.port === port;
    if (existing && !matches) await ip(['link', 'del', device]);
    if (!matches) {
      await ip(['link', 'add', device, 'type', 'vxlan', 'id', String(vni), 'local', nodeIp, 'dev', underlay.ifname, 'dstport', String(port), 'nolearning']);
    }
    await ip(['link', 'set', device, 'mtu', String(underlay.mtu - VXLAN_OVERHEAD), 'up']);
    await ip(['addr', 'replace', `${vtepAddress(this.cfg.block)}/32`, 'dev', device]);
    const [link] = JSON.parse(await ip(['-j', 'link', 'show', 'dev', device])) as { address: string }[];
    return link.address;
  }

  /** Programs (or re-programs) the route, neighbor and FDB entry for another node. */
  async addPeer(p: Peer): Promise<void> {
    const old = this.peers.get(p.name);
    if (old && old.block === p.block && old.vtepMac === p.vtepMac && old.nodeIp === p.nodeIp) return;
    if (old) await this.removePeer(p.name);
    const { device } = this.cfg;
    const vtep = vtepAddress(p.block);
    await ip(['neigh', 'replace', vtep, 'lladdr', p.vtepMac, 'dev', device, 'nud', 'permanent']);
    await run('bridge', ['fdb', 'replace', p.vtepMac, 'dev', device, 'dst', p.nodeIp, 'self', 'permanent']);
    await ip(['route', 'replace', p.block, 'via', vtep, 'dev', device, 'onlink']);
    this.peers.set(p.name, p);
  }

  /** Removes what addPeer programmed; a node that left takes its routes with it. */
  async removePeer(name: string): Promise<void> {
    const p = this.peers.get(name);
    if (!p) return;
    const { device } = this.cfg;
    const quiet = (f: Promise<unknown>) => f.catch(() => undefined);
    await quiet(ip(['route', 'del', p.block, 'dev', device]));
    await quiet(ip(['neigh', 'del', vtepAddress(p.block), 'dev', device]));
    await quiet(run('bridge', ['fdb', 'del', p.vtepMac, 'dev', device, 'dst', p.nodeIp, 'self']));
    this.peers.delete(name);
  }

  peerNames(): string[] {
    return [...this.peers.keys()];
  }
}
