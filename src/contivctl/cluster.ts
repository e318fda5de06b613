// contivctl cluster: the cluster as etcd holds it, and the removal of a dead node's leftovers (its pods' IP
// keys and its blocks), each deleted in a transaction that requires it unchanged and the node still gone.
import type { EtcdSession } from '../etcd/connect';
import { BLOCKS, blockOfKey, IPS, NODES, nodeKey, parseRecord, splitIpKey } from '../etcd/layout';
import type { BlockRecord, IpRecord, NodeRecord } from '../etcd/records';
import { checkBlockRecord, checkIpRecord, checkNodeRecord } from '../generated/validators';

export interface ClusterView {
  nodes: NodeRecord[];
  blocks: (BlockRecord & { block: string; ips: number; ownerAlive: boolean })[];
  ips: (IpRecord & { ip: string; block: string })[];
}

export async function readCluster(etcd: EtcdSession): Promise<ClusterView> {
  const c = etcd.client;
  const [nodes, blocks, ips] = await etcd.call(
    'reading the cluster',
    Promise.all([c.getAll().prefix(NODES).strings(), c.getAll().prefix(BLOCKS).strings(), c.getAll().prefix(IPS).strings()]),
  );
  const nodeList = Object.entries(nodes).map(([k, v]) => parseRecord(checkNodeRecord, k, v));
  const ipList = Object.entries(ips).map(([k, v]) => ({ ...splitIpKey(k), ...parseRecord(checkIpRecord, k, v) }));
  const ipsPerBlock = new Map<string, number>();
  for (const { block } of ipList) ipsPerBlock.set(block, (ipsPerBlock.get(block) ?? 0) + 1);
  const blockList = Object.entries(blocks).map(([k, v]) => {
    const block = blockOfKey(k);
    const rec = parseRecord(checkBlockRecord, k, v);
    return { block, ...rec, ips: ipsPerBlock.get(block) ?? 0, ownerAlive: nodeList.some((n) => n.name === rec.node) };
  });
  return { nodes: nodeList, blocks: blockList, ips: ipList };
}

interface Leftover {
  key: string;
  /** The value as read: it is deleted only if still that. */
  value: string;
}

export interface RemovalPlan {
  node: string;
  ips: (Leftover & { ip: string; containerId: string; ifname: string })[];
  blocks: (Leftover & { block: string })[];
}

/** What removing `node` would delete; refuses while the node is registered (its lease alive). */
export async function planNodeRemoval(etcd: EtcdSession, node: string): Promise<RemovalPlan> {
  const c = etcd.client;
  const [registration, blocks, ips] = await etcd.call(
    `reading ${node}'s records`,
    Promise.all([c.get(nodeKey(node)).string(), c.getAll().prefix(BLOCKS).strings(), c.getAll().prefix(IPS).strings()]),
  );
  if (registration !== null) {
    throw new Error(`node ${node} is alive: its lease still holds ${nodeKey(node)}; stop its netplugin (or wait for the lease to expire) before removing it`);
  }
  return {
    node,
    ips: Object.entries(ips).flatMap(([key, value]) => {
      const rec = parseRecord(checkIpRecord, key, value);
      return rec.node === node ? [{ key, value, ip: splitIpKey(key).ip, containerId: rec.containerId, ifname: rec.ifname }] : [];
    }),
    blocks: Object.entries(blocks).flatMap(([key, value]) =>
      parseRecord(checkBlockRecord, key, value).node === node ? [{ key, value, block: blockOfKey(key) }] : [],
    ),
  };
}

/** Deletes what the plan found, IPs before blocks; what changed since (or a node that came back) is left and reported. */
export async function removeNode(etcd: EtcdSession, plan: RemovalPlan): Promise<{ deleted: string[]; skipped: string[] }> {
  const c = etcd.client;
  const deleted: string[] = [];
  const skipped: string[] = [];
  for (const item of [...plan.ips, ...plan.blocks]) {
    const res = await etcd.call(
      `deleting ${item.key}`,
      etcd
        .ifAll([
          [item.key, 'Value', '==', item.value],
          [nodeKey(plan.node), 'Version', '==', 0],
        ])
        .then(c.delete().key(item.key))
        .commit(),
    );
    (res.succeeded ? deleted : skipped).push(item.key);
  }
  return { deleted, skipped };
}
