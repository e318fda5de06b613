// Which block of the cluster CIDR(s) a node serves. A node registers under its lease in the same transaction
// that claims its blocks, so a claimed block always has a live owner in the registry until that owner's lease
// expires: nodes that start together can no longer mistake each other's fresh claims for a dead node's.

import type { Comparison, EtcdSession } from '../../etcd/connect';
import { BLOCKS, blockKey, blockOfKey, ipPrefix, NODES, nodeKey, parseRecord } from '../../etcd/layout';
import type { BlockRecord, NodeRecord } from '../../etcd/records';
import { checkBlockRecord } from '../../generated/validators';
import { bigIntToIpv6, type Cidr, intToIpv4, PREFIX_LIMITS, parseCidr } from '../../ip/ip';
import type { Logger } from '../../log/logger';

/** The most blocks a cluster CIDR may be cut into: enough for any cluster, and cheap to scan. */
const MAX_BLOCKS = 1 << 16;

/** Every block of `clusterCidr` with prefix `blockPrefix`, in address order (IPv4 or IPv6). */
export function blocksOf(clusterCidr: string, blockPrefix: number): string[] {
  let cluster: Cidr;
  try {
    cluster = parseCidr(clusterCidr);
  } catch {
    throw new Error(`${clusterCidr} is not in CIDR form`);
  }
  const { family, bits, network, prefix } = cluster;
  const [min, max] = PREFIX_LIMITS.block[family];
  if (prefix < 1) throw new Error(`${clusterCidr} is not in CIDR form`);
  if (blockPrefix < Math.max(prefix, min) || blockPrefix > max)
    throw new Error(`a block prefix of /${blockPrefix} must be between the cluster CIDR's /${prefix} (and /${min}) and /${max}`);
  if (2 ** (blockPrefix - prefix) > MAX_BLOCKS)
    throw new Error(`${clusterCidr} cut into /${blockPrefix} blocks makes more than ${MAX_BLOCKS}: use a longer cluster prefix or a shorter block prefix`);
  const host = BigInt(bits - blockPrefix);
  const text = (n: bigint) => (family === 6 ? bigIntToIpv6(n) : intToIpv4(Number(n)));
  return Array.from({ length: 2 ** (blockPrefix - prefix) }, (_, i) => `${text(network + (BigInt(i) << host))}/${blockPrefix}`);
}

export type BlockChoice = { block: string; how: 'kept' | 'new' | 'taken-over'; from?: string } | undefined;

/**
 * Which block this node uses: the one it already owns; else the first whose owner is dead (no node key) and
 * which has no IP left (freed blocks are reused before the cluster CIDR is spread further); else the first
 * never claimed. Pure, so the rule is tested apart from etcd.
 */
export function chooseBlock(me: string, candidates: string[], owners: Map<string, string>, liveNodes: Set<string>, blocksWithIps: Set<string>): BlockChoice {
  const mine = candidates.find((b) => owners.get(b) === me);
  if (mine) return { block: mine, how: 'kept' };
  const isOrphan = (b: string) => {
    const owner = owners.get(b);
    return owner !== undefined && !liveNodes.has(owner) && !blocksWithIps.has(b);
  };
  const orphan = candidates.find(isOrphan);
  if (orphan) return { block: orphan, how: 'taken-over', from: owners.get(orphan) };
  const fresh = candidates.find((b) => !owners.has(b));
  return fresh ? { block: fresh, how: 'new' } : undefined;
}

/** A block this node holds, with its record exactly as etcd holds it: every later claim compares against it. */
export interface HeldBlock {
  block: string;
  family: 4 | 6;
  record: string;
}

/** The held IPv6 block (dual stack only). */
export const heldV6 = (held: HeldBlock[]): HeldBlock | undefined => held.find((h) => h.family === 6);

/** The held IPv4 block: every node has one once it has joined. */
export function heldV4(held: HeldBlock[]): HeldBlock {
  const v4 = held.find((h) => h.family === 4);
  if (!v4) throw new Error('this node holds no IPv4 block: it has not joined the cluster');
  return v4;
}

/** The comparisons that hold while every one of `held` is still as this node claimed it. */
export const stillHeld = (held: HeldBlock[]): Comparison[] => held.map((h) => [blockKey(h.block), 'Value', '==', h.record]);

export interface BlockRequest {
  clusterCidr: string;
  blockPrefix: number;
}

/**
 * Claims one block per request (IPv4, and IPv6 in dual stack) and writes the node's registration under
 * `leaseId`, all in one transaction; retries when another node's transaction won a race. Returns the blocks
 * and the registration as written.
 */
export async function claimBlocks(
  etcd: EtcdSession,
  self: Omit<NodeRecord, 'block' | 'block6'>,
  requests: BlockRequest[],
  leaseId: string,
  log: Logger,
): Promise<{ held: HeldBlock[]; registration: NodeRecord }> {
  const candidates = requests.map((r) => blocksOf(r.clusterCidr, r.blockPrefix));
  const client = etcd.client;
  // Each pass reads, chooses and commits only if nothing it read has changed; it loses only to another node's
  // commit in between, i.e. to nodes starting at the same moment. Twenty passes outlast any realistic burst
  // of simultaneous starts (each loser sees the winner's claim on its next read), while a cluster that keeps
  // changing under us fails the start with a clear error instead of spinning forever.
  for (let attempt = 0; attempt < 20; attempt++) {
    const [blocks, nodes] = await etcd.call(
      'reading blocks and nodes',
      Promise.all([client.getAll().prefix(BLOCKS).strings(), client.getAll().prefix(NODES).keys()]),
    );
    const owners = new Map(Object.entries(blocks).map(([k, v]) => [blockOfKey(k), parseRecord(checkBlockRecord, k, v).node]));
    const live = new Set(nodes.map((k) => k.slice(NODES.length)));
    // only a dead owner's block can be taken over, and only if it holds no IP: ask about those alone
    // (listing every IP key would grow with every pod in the cluster)
    const orphans = [...owners].filter(([, node]) => !live.has(node)).map(([block]) => block);
    const counts = await etcd.call(
      "reading the IPs of dead nodes' blocks",
      Promise.all(orphans.map((b) => client.getAll().prefix(ipPrefix(b)).limit(1).keys())),
    );
    const withIps = new Set(orphans.filter((_, i) => counts[i].length));
    const choices = candidates.map((c, i) => {
      const choice = chooseBlock(self.name, c, owners, live, withIps);
      if (!choice) throw new Error(`no free block of /${requests[i].blockPrefix} left in ${requests[i].clusterCidr}`);
      return choice;
    });
    const takeovers = choices.filter((c) => c.how === 'taken-over');
    // look again right before the transaction; its comparisons cover the rest (a dead owner would have to
    // register again, in a transaction of its own, before it could allocate anything)
    if (takeovers.length) {
      const inUse = await etcd.call(
        'reading the IPs of the blocks to take over',
        Promise.all(takeovers.map((c) => client.getAll().prefix(ipPrefix(c.block)).keys())),
      );
      if (inUse.some((keys) => keys.length)) continue;
    }
    const claimedAt = new Date().toISOString();
    const held: HeldBlock[] = choices.map((c) => ({
      block: c.block,
      family: c.block.includes(':') ? 6 : 4,
      record: c.how === 'kept' ? blocks[blockKey(c.block)] : JSON.stringify({ node: self.name, claimedAt } satisfies BlockRecord),
    }));
    const comparisons = choices.flatMap((c): Comparison[] =>
      c.how === 'new'
        ? [[blockKey(c.block), 'Create', '==', 0]]
        : c.how === 'kept'
          ? [[blockKey(c.block), 'Value', '==', blocks[blockKey(c.block)]]]
          : [
              [blockKey(c.block), 'Value', '==', blocks[blockKey(c.block)]],
              [nodeKey(c.from ?? ''), 'Version', '==', 0],
            ],
    );
    const v6 = heldV6(held);
    const registration: NodeRecord = { ...self, block: heldV4(held).block, ...(v6 ? { block6: v6.block } : {}) };
    const res = await etcd.call(
      'claiming blocks and registering the node',
      etcd
        .ifAll(comparisons)
        .then(
          ...choices.flatMap((c, i) => (c.how === 'kept' ? [] : [client.put(blockKey(c.block)).value(held[i].record)])),
          client.put(nodeKey(self.name)).value(JSON.stringify(registration)).lease(leaseId),
        )
        .commit(),
    );
    if (res.succeeded) {
      for (const c of choices) log.info('serving pod block', { block: c.block, how: c.how, from: c.from });
      return { held, registration };
    }
  }
  throw new Error('could not claim a block: too many concurrent claims');
}
