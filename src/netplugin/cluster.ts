// Cluster mode: the node registry, pod blocks and IP ownership in etcd v3; the node's own records stay in
// its embedded store. Keys:
//   /contiv/nodes/<name>          {name, nodeIp, block, vtepMac}   under this node's lease (kept alive)
//   /contiv/blocks/<a.b.c.d-len>  {node, claimedAt}                 no lease: pods outlive a node's lease
//   /contiv/ips/<block>/<ip>      {node, containerId, ifname, ...}  created only if absent (a transaction)
// No two pods in the cluster share an IP because an IP is used only after its key was created in a
// transaction that requires it absent. A dead node's block is taken over only when its node key is gone
// (lease expired) and no IP key of the block remains, checked again inside the claiming transaction.
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../log/logger';
import { CniError, ErrorCode } from '../cni/errors';
import { intToIpv4, parseCidr4 } from './ip';
import { type Overlay, type Peer } from './overlay';
import type { EndpointRow, Store } from './store';

const PREFIX = '/contiv/';
const NODES = `${PREFIX}nodes/`;
const BLOCKS = `${PREFIX}blocks/`;
const IPS = `${PREFIX}ips/`;
/** An etcd call that takes longer is treated as etcd being unreachable. */
export const ETCD_TIMEOUT_MS = 3000;

const blockKey = (block: string) => `${BLOCKS}${block.replace('/', '-')}`;
const blockOfKey = (key: string) => key.slice(BLOCKS.length).replace('-', '/');
/** The prefix of a block's IP keys (`/contiv/ips/<a.b.c.d-len>/`). */
export const ipPrefix = (block: string) => `${IPS}${block.replace('/', '-')}/`;
const ipKey = (block: string, ip: string) => `${ipPrefix(block)}${ip}`;

export interface NodeRecord extends Peer {}
export interface BlockRecord {
  node: string;
  claimedAt: string;
}
export interface IpRecord {
  node: string;
  containerId: string;
  ifname: string;
  netns: string;
  podName: string;
  podNamespace: string;
  createdAt: string;
}

/** Every block of `clusterCidr` with prefix `blockPrefix`, in address order. */
export function blocksOf(clusterCidr: string, blockPrefix: number): string[] {
  const c = parseCidr4(clusterCidr);
  if (blockPrefix < c.prefix || blockPrefix > 28) throw new Error(`--block-prefix ${blockPrefix} must be between the cluster CIDR's /${c.prefix} and /28`);
  const size = 2 ** (32 - blockPrefix);
  const count = 2 ** (blockPrefix - c.prefix);
  return Array.from({ length: count }, (_, i) => `${intToIpv4(c.network + i * size)}/${blockPrefix}`);
}

export type BlockChoice = { block: string; how: 'kept' | 'new' | 'taken-over'; from?: string } | undefined;

/**
 * Which block this node uses: the one it already owns; else the first whose owner is dead (no node key)
 * and which has no IP left (freed blocks are reused before the cluster CIDR is spread further); else the
 * first never claimed. Pure, so the rule is tested apart from etcd.
 */
export function chooseBlock(me: string, candidates: string[], owners: Map<string, string>, liveNodes: Set<string>, blocksWithIps: Set<string>): BlockChoice {
  const mine = candidates.find((b) => owners.get(b) === me);
  if (mine) return { block: mine, how: 'kept' };
  const orphan = candidates.find((b) => owners.has(b) && !liveNodes.has(owners.get(b)!) && !blocksWithIps.has(b));
  if (orphan) return { block: orphan, how: 'taken-over', from: owners.get(orphan) };
  const fresh = candidates.find((b) => !owners.has(b));
  return fresh ? { block: fresh, how: 'new' } : undefined;
}

export interface ClusterOptions {
  endpoints: string[];
  nodeName: string;
  nodeIp: string;
  clusterCidr: string;
  blockPrefix: number;
  leaseTtlSeconds: number;
}

const unreachable = (err: unknown) => new CniError(ErrorCode.TryAgainLater, `etcd is unreachable: ${(err as Error).message}`, 'the cluster store answers again once etcd is back; nothing was allocated');

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took over ${ETCD_TIMEOUT_MS} ms`)), ETCD_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class ClusterIpam {
  private readonly client: Etcd3;
  private lease?: Lease;
  private watcher?: Watcher;
  private overlay?: Overlay;
  private self?: NodeRecord;
  private timers: NodeJS.Timeout[] = [];
  private draining = false;
  private closed = false;
  block = '';

  constructor(private readonly opts: ClusterOptions, private readonly store: Store, private readonly log: Logger) {
    this.client = new Etcd3({ hosts: opts.endpoints, dialTimeout: ETCD_TIMEOUT_MS });
  }

  /** Picks this node's block (kept across restarts) and claims it in a transaction; retries on races. */
  async claimBlock(): Promise<string> {
    const candidates = blocksOf(this.opts.clusterCidr, this.opts.blockPrefix);
    for (let attempt = 0; attempt < 20; attempt++) {
      const [blocks, nodes, ips] = await withTimeout(Promise.all([
        this.client.getAll().prefix(BLOCKS).strings(),
        this.client.getAll().prefix(NODES).keys(),
        this.client.getAll().prefix(IPS).keys(),
      ]), 'reading blocks');
      const owners = new Map(Object.entries(blocks).map(([k, v]) => [blockOfKey(k), (JSON.parse(v) as BlockRecord).node]));
      const live = new Set(nodes.map((k) => k.slice(NODES.length)));
      const withIps = new Set(ips.map((k) => k.slice(IPS.length).split('/')[0].replace('-', '/')));
      const choice = chooseBlock(this.opts.nodeName, candidates, owners, live, withIps);
      if (!choice) throw new Error(`no free block of /${this.opts.blockPrefix} left in ${this.opts.clusterCidr}`);
      if (choice.how === 'kept') return (this.block = choice.block);
      const key = blockKey(choice.block);
      const value = JSON.stringify({ node: this.opts.nodeName, claimedAt: new Date().toISOString() } satisfies BlockRecord);
      let txn = choice.how === 'new'
        ? this.client.if(key, 'Create', '==', 0)
        : this.client.if(key, 'Value', '==', blocks[key]).and(`${NODES}${choice.from}`, 'Version', '==', 0);
      if (choice.how === 'taken-over') {
        // look again right before the transaction; its node-key comparison covers the rest: a dead node
        // registers again before it allocates anything
        const inUse = await withTimeout(this.client.getAll().prefix(ipPrefix(choice.block)).keys(), 'reading block IPs');
        if (inUse.length) continue;
      }
      txn = txn.then(this.client.put(key).value(value));
      const res = await withTimeout(txn.commit(), 'claiming a block');
      if (res.succeeded) {
        this.log.info('claimed pod block', { block: choice.block, how: choice.how, from: choice.from });
        return (this.block = choice.block);
      }
    }
    throw new Error('could not claim a block: too many concurrent claims');
  }

  /** Registers this node under a kept-alive lease, and programs the overlay from the registry. */
  async start(self: NodeRecord, overlay: Overlay): Promise<void> {
    this.self = self;
    this.overlay = overlay;
    await this.register();
    this.watcher = await withTimeout(this.client.watch().prefix(NODES).create(), 'watching nodes');
    this.watcher.on('put', (kv) => void this.onNode(kv.key.toString(), kv.value.toString()));
    this.watcher.on('delete', (kv) => void this.onNodeGone(kv.key.toString().slice(NODES.length)));
    this.watcher.on('error', (err) => this.log.warn('etcd watch error', { error: err.message }));
    await this.resync();
    // belt and braces: a missed watch event is repaired within one period
    this.timers.push(setInterval(() => void this.resync().catch((err) => this.log.warn('overlay resync failed', { error: (err as Error).message })), 15_000));
    this.timers.push(setInterval(() => void this.drainReleases(), 2_000));
    await this.drainReleases();
  }

  private async register(): Promise<void> {
    const lease = this.client.lease(this.opts.leaseTtlSeconds);
    lease.on('lost', (err) => {
      if (this.closed) return;
      this.log.warn('etcd lease lost; registering again', { error: err.message });
      const retry = () => void this.register().catch(() => this.timers.push(setTimeout(retry, 2000)));
      retry();
    });
    await withTimeout(lease.put(`${NODES}${this.opts.nodeName}`).value(JSON.stringify(this.self)).exec(), 'registering the node');
    this.lease = lease;
  }

  private async onNode(key: string, value: string): Promise<void> {
    const peer = JSON.parse(value) as NodeRecord;
    if (peer.name === this.opts.nodeName) return;
    try {
      await this.overlay!.addPeer(peer);
      this.log.info('overlay peer programmed', { node: peer.name, block: peer.block, nodeIp: peer.nodeIp });
    } catch (err) {
      this.log.error('programming an overlay peer failed', { key, error: (err as Error).message });
    }
  }

  private async onNodeGone(name: string): Promise<void> {
    if (name === this.opts.nodeName) return;
    await this.overlay!.removePeer(name);
    this.log.info('overlay peer removed (node left or its lease expired)', { node: name });
  }

  private async resync(): Promise<void> {
    const nodes = await withTimeout(this.client.getAll().prefix(NODES).strings(), 'listing nodes');
    for (const [k, v] of Object.entries(nodes)) await this.onNode(k, v);
    const present = new Set(Object.keys(nodes).map((k) => k.slice(NODES.length)));
    for (const name of this.overlay!.peerNames()) if (!present.has(name)) await this.onNodeGone(name);
  }

  /** Creates the IP's key if absent. false: somebody holds it (try the next address). Throws code 11. */
  async claim(row: EndpointRow): Promise<boolean> {
    const ip = intToIpv4(row.ipv4);
    const record: IpRecord = { node: this.opts.nodeName, containerId: row.containerId, ifname: row.ifname, netns: row.netns, podName: row.podName, podNamespace: row.podNamespace, createdAt: row.createdAt };
    const key = ipKey(this.block, ip);
    try {
      const res = await withTimeout(this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(JSON.stringify(record))).commit(), `claiming ${ip}`);
      return res.succeeded;
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** Queues the IP's release durably, then tries to apply it: a DEL never waits for etcd. */
  release(row: EndpointRow): void {
    this.store.queueRelease(intToIpv4(row.ipv4), row.containerId, row.ifname);
    void this.drainReleases();
  }

  async drainReleases(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (const r of this.store.queuedReleases()) {
        const key = ipKey(this.block, r.ip);
        // delete only if the key is still this attachment's: never someone else's later claim
        const current = await withTimeout(this.client.get(key).string(), `reading ${r.ip}`);
        const holder = current === null ? undefined : (JSON.parse(current) as IpRecord);
        if (current !== null && holder?.containerId === r.containerId && holder.ifname === r.ifname) await withTimeout(this.client.if(key, 'Value', '==', current).then(this.client.delete().key(key)).commit(), `releasing ${r.ip}`);
        this.store.releaseDone(r.ip);
        this.log.info('released IP in etcd', { ip: r.ip, containerId: r.containerId });
      }
    } catch (err) {
      this.log.warn('etcd release deferred', { error: (err as Error).message, queued: this.store.queuedReleases().length });
    } finally {
      this.draining = false;
    }
  }

  /** IP keys of this node that no local record explains (a crash between claim and record) are freed. */
  async reconcile(local: EndpointRow[]): Promise<string[]> {
    const keys = await withTimeout(this.client.getAll().prefix(ipPrefix(this.block)).strings(), 'listing block IPs');
    const known = new Set(local.map((r) => intToIpv4(r.ipv4)));
    const queued = new Set(this.store.queuedReleases().map((r) => r.ip));
    const freed: string[] = [];
    for (const [key, value] of Object.entries(keys)) {
      const ip = key.slice(key.lastIndexOf('/') + 1);
      if ((JSON.parse(value) as IpRecord).node !== this.opts.nodeName || known.has(ip) || queued.has(ip)) continue;
      await withTimeout(this.client.if(key, 'Value', '==', value).then(this.client.delete().key(key)).commit(), `freeing ${ip}`);
      freed.push(ip);
    }
    return freed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timers.forEach((t) => clearInterval(t));
    await this.watcher?.cancel().catch(() => undefined);
    // The lease is not revoked: a restart within its TTL keeps the node's routes on every peer; a node
    // that does not come back leaves the registry when the lease expires.
    this.lease?.release();
    this.client.close();
  }
}

/** The cluster as etcd holds it, for contivctl. */
export async function readCluster(endpoints: string[]): Promise<{ nodes: NodeRecord[]; blocks: (BlockRecord & { block: string; ips: number; ownerAlive: boolean })[]; ips: (IpRecord & { ip: string })[] }> {
  const client = new Etcd3({ hosts: endpoints, dialTimeout: ETCD_TIMEOUT_MS });
  try {
    const [nodes, blocks, ips] = await withTimeout(Promise.all([
      client.getAll().prefix(NODES).strings(), client.getAll().prefix(BLOCKS).strings(), client.getAll().prefix(IPS).strings(),
    ]), 'reading the cluster');
    const nodeList = Object.values(nodes).map((v) => JSON.parse(v) as NodeRecord);
    const ipList = Object.entries(ips).map(([k, v]) => ({ ip: k.slice(k.lastIndexOf('/') + 1), ...(JSON.parse(v) as IpRecord) }));
    const blockList = Object.entries(blocks).map(([k, v]) => {
      const block = blockOfKey(k);
      const rec = JSON.parse(v) as BlockRecord;
      return { block, ...rec, ips: Object.keys(ips).filter((ik) => ik.startsWith(ipPrefix(block))).length, ownerAlive: nodeList.some((n) => n.name === rec.node) };
    });
    return { nodes: nodeList, blocks: blockList, ips: ipList };
  } finally {
    client.close();
  }
}
