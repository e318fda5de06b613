// The cluster store's layout in etcd v3: the contract between every node's netplugin and contivctl.
//   /contiv/nodes/<name>          NodeRecord   under the node's lease (kept alive), written in the same
//                                              transaction as its block claims
//   /contiv/blocks/<cidr>         BlockRecord  no lease: pods outlive a node's lease (IPv4 and IPv6 blocks)
//   /contiv/ips/<block>/<ip>      IpRecord     created only if absent, and only while the block is its node's
// CIDRs in keys have '-' for '/' (10.244.3.0-24, fd00:244:0:3::-64).
import { decodeJson } from '../decode';
import { ErrorCode } from '../errors';
import type { Checked } from '../generated/validators';
import type { NodeRecord } from './records';

const PREFIX = '/contiv/';
export const NODES = `${PREFIX}nodes/`;
export const BLOCKS = `${PREFIX}blocks/`;
export const IPS = `${PREFIX}ips/`;

export const nodeKey = (name: string) => `${NODES}${name}`;
export const blockKey = (block: string) => `${BLOCKS}${block.replace('/', '-')}`;
export const blockOfKey = (key: string) => key.slice(BLOCKS.length).replace('-', '/');
/** The prefix of a block's IP keys. */
export const ipPrefix = (block: string) => `${IPS}${block.replace('/', '-')}/`;
export const ipKey = (block: string, ip: string) => `${ipPrefix(block)}${ip}`;
/** The block an IP key is under, and the IP. */
export function splitIpKey(key: string): { block: string; ip: string } {
  const [block, ip] = key.slice(IPS.length).split('/');
  return { block: block.replace('-', '/'), ip };
}

/** A node's pod blocks: IPv4's, then IPv6's in dual stack. */
export const blocksOfNode = (n: Pick<NodeRecord, 'block' | 'block6'>): string[] => [n.block, ...(n.block6 ? [n.block6] : [])];

/** A record read back from etcd: anything else written under our keys is refused by name. */
export function parseRecord<T>(check: (v: unknown) => Checked<T>, key: string, value: string): T {
  return decodeJson(value, check, {
    notJson: { code: ErrorCode.Io, msg: `etcd key ${key} holds something that is not JSON` },
    invalid: { code: ErrorCode.Io, msg: `etcd key ${key} does not hold a record of this release` },
  });
}
