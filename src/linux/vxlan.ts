// The overlay's kernel objects over rtnetlink (the one kernel layer, with rtnetlink.ts): the VXLAN device,
// its VTEP addresses, and per peer a permanent neighbour (the peer's VTEP address -> its VTEP MAC), an FDB
// entry (that MAC -> the peer's underlay IP) and an onlink route to the peer's block via its VTEP address.
// Each is one request, where `ip`/`bridge` cost an exec each (~150 ms per dual-stack peer on the bench VM).
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from '../ip/ip';
import {
  AF_BRIDGE,
  attr,
  CREATE_EXCL,
  CREATE_REPLACE,
  cstr,
  errnoOf,
  familyOf,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  LINK_UP,
  linkByName,
  MAIN_TABLE,
  nestedAttrs,
  newAddress,
  REQUEST_TIMEOUT,
  type RtNetlinkSocket,
  request,
  u32,
} from './rtnetlink';

const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15;
const RTNH_F_ONLINK = 4;

export interface VxlanSpec {
  device: string;
  vni: number;
  /** UDP destination port */
  port: number;
  /** The underlay IPv4 address the device sends from */
  local: string;
  underlayIndex: number;
  mtu: number;
}

const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

/** IFLA_LINKINFO of a VXLAN device with learning off (peers are programmed, never learned). */
function vxlanLinkInfo(s: VxlanSpec): Buffer {
  return Buffer.concat([
    attr(IFLA_INFO_KIND, cstr('vxlan')),
    attr(
      IFLA_INFO_DATA,
      Buffer.concat([
        attr(IFLA_VXLAN_ID, u32(s.vni)),
        attr(IFLA_VXLAN_LINK, u32(s.underlayIndex)),
        attr(IFLA_VXLAN_LOCAL, ipToBytes(s.local)),
        attr(IFLA_VXLAN_LEARNING, Buffer.from([0])),
        attr(IFLA_VXLAN_PORT, be16(s.port)),
      ]),
    ),
  ]);
}

/** Why an existing link cannot serve as the device `s` describes, or undefined when it can. */
function mismatch(linkinfo: Buffer | undefined, s: VxlanSpec): string | undefined {
  const info = linkinfo ? nestedAttrs(linkinfo) : new Map<number, Buffer>();
  const kind = info.get(IFLA_INFO_KIND)?.toString('utf8').replace(/\0+$/, '');
  if (kind !== 'vxlan') return `it is a ${kind ?? 'device of unknown kind'}, not vxlan`;
  const data = nestedAttrs(info.get(IFLA_INFO_DATA) ?? Buffer.alloc(0));
  const vni = data.get(IFLA_VXLAN_ID)?.readUInt32LE(0);
  const local = data.get(IFLA_VXLAN_LOCAL);
  const port = data.get(IFLA_VXLAN_PORT)?.readUInt16BE(0);
  const underlay = data.get(IFLA_VXLAN_LINK)?.readUInt32LE(0);
  const learning = data.get(IFLA_VXLAN_LEARNING)?.[0];
  if (vni !== s.vni) return `its VNI is ${vni}, not ${s.vni}`;
  if (!local || bytesToIp(local) !== s.local) return `it sends from ${local ? bytesToIp(local) : 'no local address'}, not ${s.local}`;
  if (port !== s.port) return `its UDP port is ${port}, not ${s.port}`;
  if (underlay !== s.underlayIndex) return `its underlay is ifindex ${underlay}, not ${s.underlayIndex}`;
  if (learning) return 'it learns addresses';
  return undefined;
}

/**
 * The VXLAN device as `s` describes it, up with the given MTU: an existing one is kept when it matches, else
 * replaced, and `onReplace` hears why (a device changed under the daemon is something an operator must see).
 * Returns its ifindex and MAC (the node's VTEP MAC).
 */
export async function ensureVxlan(sock: RtNetlinkSocket, s: VxlanSpec, onReplace: (why: string) => void): Promise<{ index: number; mac: string }> {
  let link = await linkByName(sock, s.device);
  const why = link && mismatch(link.attrs.linkinfo as Buffer | undefined, s);
  if (link && why) {
    onReplace(why);
    await request(`delete ${s.device}`, sock.delLink({ index: link.data.index }, {}, REQUEST_TIMEOUT));
    link = undefined;
  }
  if (!link) {
    await request(`create VXLAN device ${s.device}`, sock.newLink({}, { ifname: s.device, linkinfo: vxlanLinkInfo(s) }, CREATE_EXCL));
    link = await linkByName(sock, s.device);
  }
  const index = link?.data.index;
  if (!index) throw new Error(`VXLAN device ${s.device} did not appear`);
  await request(`set ${s.device} up`, sock.setLink({ index, ...LINK_UP }, { mtu: s.mtu }, REQUEST_TIMEOUT));
  const mac = link?.attrs.address as Buffer | undefined;
  if (!mac) throw new Error(`VXLAN device ${s.device} has no MAC address`);
  return { index, mac: bytesToMac(mac) };
}

/** A host address (/32, /128) on the device; IPv6 without duplicate address detection. */
export async function replaceHostAddress(sock: RtNetlinkSocket, index: number, ip: string): Promise<void> {
  const bytes = ipToBytes(ip);
  await newAddress(sock, `address ${ip} on ifindex ${index}`, index, { bytes, prefix: bytes.length * 8 }, CREATE_REPLACE);
}

/**
 * What one peer needs: where its VTEP MAC is (one FDB entry), and per block (IPv4, and IPv6 in dual stack) the
 * block routed via its VTEP address and that address's MAC.
 */
export interface Peer {
  vtepMac: string;
  underlayIp: string;
  blocks: { block: { network: string; prefix: number }; vtep: string }[];
}

// the FDB entry lives on the device itself (NTF_SELF), not on a bridge it is a port of
const fdbHeader = (index: number) => ({ family: AF_BRIDGE, ifindex: index, flags: { self: true as const } });

export async function replacePeer(sock: RtNetlinkSocket, index: number, p: Peer): Promise<void> {
  const mac = macToBytes(p.vtepMac);
  await request(
    `FDB ${p.vtepMac} -> ${p.underlayIp}`,
    sock.newNeighbor({ ...fdbHeader(index), state: { permanent: true } }, { lladdr: mac, dst: ipToBytes(p.underlayIp) }, CREATE_REPLACE),
  );
  for (const { block, vtep: vtepIp } of p.blocks) {
    const vtep = ipToBytes(vtepIp);
    const family = familyOf(vtep);
    await request(
      `neighbour ${vtepIp} -> ${p.vtepMac}`,
      sock.newNeighbor({ family, ifindex: index, state: { permanent: true } }, { dst: vtep, lladdr: mac }, CREATE_REPLACE),
    );
    await request(
      `route ${block.network}/${block.prefix} via ${vtepIp}`,
      sock.newRoute(
        { family, dstLen: block.prefix, table: MAIN_TABLE, protocol: 'BOOT', scope: 'UNIVERSE', type: 'UNICAST', flags: { __unknown: RTNH_F_ONLINK } },
        { dst: ipToBytes(block.network), gateway: vtep, oif: index },
        CREATE_REPLACE,
      ),
    );
  }
}

/** Removes what replacePeer made; what is already gone is not an error. */
export async function removePeer(sock: RtNetlinkSocket, index: number, p: Peer): Promise<void> {
  const gone = (err: unknown) => {
    if (!['ESRCH', 'ENOENT', 'ENODEV'].includes(errnoOf(err) ?? '')) throw err;
  };
  for (const { block, vtep: vtepIp } of p.blocks) {
    const vtep = ipToBytes(vtepIp);
    const family = familyOf(vtep);
    await request(
      `delete route ${block.network}/${block.prefix}`,
      sock.delRoute({ family, dstLen: block.prefix, table: MAIN_TABLE }, { dst: ipToBytes(block.network), oif: index }, REQUEST_TIMEOUT),
    ).catch(gone);
    await request(`delete neighbour ${vtepIp}`, sock.delNeighbor({ family, ifindex: index }, { dst: vtep }, REQUEST_TIMEOUT)).catch(gone);
  }
  await request(
    `delete FDB ${p.vtepMac}`,
    sock.delNeighbor(fdbHeader(index), { lladdr: macToBytes(p.vtepMac), dst: ipToBytes(p.underlayIp) }, REQUEST_TIMEOUT),
  ).catch(gone);
}

/** The device holding `ip` in this network namespace: its ifindex, name and MTU. */
export async function deviceWithAddress(sock: RtNetlinkSocket, ip: string): Promise<{ index: number; ifname: string; mtu: number } | undefined> {
  const bytes = ipToBytes(ip);
  const addrs = await request('list addresses', sock.getAddresses({}, {}, REQUEST_TIMEOUT));
  const found = addrs.find((a) => a.attrs.local && Buffer.compare(a.attrs.local as Buffer, bytes) === 0);
  if (!found?.data.index) return undefined;
  const [link] = await request(`look up ifindex ${found.data.index}`, sock.getLink({ index: found.data.index }, {}, REQUEST_TIMEOUT));
  return { index: found.data.index, ifname: link?.attrs.ifname ?? '', mtu: link?.attrs.mtu ?? 1500 };
}
