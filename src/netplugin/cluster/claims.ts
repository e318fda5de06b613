// IP ownership in etcd. An address is used only after its key was created in a transaction that requires it
// absent AND this node's block record unchanged: no two pods in the cluster share an IP even with ADDs
// racing on every node, and a node that lost its block cannot allocate in it. DEL never waits for etcd: the
// release is queued durably in the node's own store and applied when etcd answers.
import { CniError, ErrorCode } from '../../errors';
import { type Comparison, type EtcdSession, etcdUnreachable } from '../../etcd/connect';
import { ipKey, ipPrefix, parseRecord } from '../../etcd/layout';
import type { IpRecord } from '../../etcd/records';
import { checkIpRecord } from '../../generated/validators';
import { intToIpv4, isIPv6 } from '../../ip/ip';
import type { Logger } from '../../log/logger';
import type { EndpointRow, Store } from '../store';
import { type HeldBlock, heldV4, heldV6, stillHeld } from './blocks';

/** Whether this node's blocks are still its own (the registry keeps track). */
export interface BlockOwnership {
  /** Why this node may not allocate any more (its block was taken over), or undefined. */
  lostWhy(): string | undefined;
  /** Reads the blocks again: undefined while they are this node's, else why not. */
  check(): Promise<string | undefined>;
}

const cannotAllocate = (why: string) =>
  new CniError(ErrorCode.TryAgainLater, `this node cannot allocate: ${why}`, 'restart the netplugin: it claims a free block at start');

export class IpClaims {
  private draining = false;

  constructor(
    private readonly etcd: EtcdSession,
    private readonly store: Store,
    private readonly node: string,
    /** The blocks this node holds: one IPv4 block, and one IPv6 block in dual stack. */
    private readonly held: HeldBlock[],
    private readonly log: Logger,
    private readonly ownership: BlockOwnership,
  ) {}

  private get v4(): HeldBlock {
    return heldV4(this.held);
  }

  private get v6(): HeldBlock | undefined {
    return heldV6(this.held);
  }

  /** The etcd record of a local row: rebuilt the same at DEL as at ADD, so a release can compare against it. */
  private recordOf(row: EndpointRow): string {
    return JSON.stringify({
      node: this.node,
      containerId: row.containerId,
      ifname: row.ifname,
      netns: row.netns,
      podName: row.podName,
      podNamespace: row.podNamespace,
      createdAt: row.createdAt,
    } satisfies IpRecord);
  }

  /** The keys a record's addresses are claimed under. */
  private keysOf(row: EndpointRow): { key: string; ip: string }[] {
    const ip4 = intToIpv4(row.ipv4);
    return [{ key: ipKey(this.v4.block, ip4), ip: ip4 }, ...(row.ipv6 && this.v6 ? [{ key: ipKey(this.v6.block, row.ipv6), ip: row.ipv6 }] : [])];
  }

  /**
   * Creates the record's IP keys (v4 and v6) if absent, while the blocks are still this node's.
   * false: an earlier attachment holds one of them (try the next addresses). Throws code 11.
   */
  async claim(row: EndpointRow): Promise<boolean> {
    const lost = this.ownership.lostWhy();
    if (lost) throw cannotAllocate(lost);
    const record = this.recordOf(row);
    const keys = this.keysOf(row);
    const client = this.etcd.client;
    let succeeded: boolean;
    try {
      ({ succeeded } = await this.etcd.call(
        `claiming ${keys.map((k) => k.ip).join(' and ')}`,
        this.etcd
          .ifAll([...keys.map((k): Comparison => [k.key, 'Create', '==', 0]), ...stillHeld(this.held)])
          .then(...keys.map((k) => client.put(k.key).value(record)))
          .commit(),
      ));
    } catch (err) {
      throw etcdUnreachable(err);
    }
    if (succeeded) return true;
    // was it the address, or the block?
    let why: string | undefined;
    try {
      why = await this.ownership.check();
    } catch (err) {
      throw etcdUnreachable(err);
    }
    if (why) throw cannotAllocate(why);
    return false;
  }

  /**
   * A record rebuilt at start from the kernel's mark (the local store had lost it): its etcd keys say the
   * rest. When they hold this attachment's record, its fields are returned so that the rebuilt row matches
   * them (and a later release finds them); keys found missing are claimed; false when another attachment
   * holds one of its addresses (the veth is then left alone, and said so).
   */
  async adopt(row: EndpointRow): Promise<Pick<EndpointRow, 'netns' | 'podName' | 'podNamespace' | 'createdAt'> | boolean> {
    const keys = this.keysOf(row);
    let values: (string | null)[];
    try {
      values = await Promise.all(keys.map((k) => this.etcd.call(`reading ${k.ip}`, this.etcd.client.get(k.key).string())));
    } catch (err) {
      throw etcdUnreachable(err);
    }
    const records = values.map((v, i) => (v === null ? undefined : parseRecord(checkIpRecord, keys[i].key, v)));
    if (records.some((r) => r && (r.node !== this.node || r.containerId !== row.containerId || r.ifname !== row.ifname))) return false;
    const known = records.find((r) => r !== undefined);
    const fields = known ? { netns: known.netns, podName: known.podName, podNamespace: known.podNamespace, createdAt: known.createdAt } : undefined;
    const missing = keys.filter((_, i) => values[i] === null);
    if (missing.length) {
      const record = this.recordOf({ ...row, ...fields });
      const { succeeded } = await this.etcd.call(
        `claiming ${missing.map((k) => k.ip).join(' and ')} for an adopted attachment`,
        this.etcd
          .ifAll([...missing.map((k): Comparison => [k.key, 'Create', '==', 0]), ...stillHeld(this.held)])
          .then(...missing.map((k) => this.etcd.client.put(k.key).value(record)))
          .commit(),
      );
      if (!succeeded) return false;
    }
    return fields ?? true;
  }

  /** Deletes `key` if it still holds `value`. */
  private deleteIfStill(what: string, key: string, value: string): Promise<unknown> {
    return this.etcd.call(
      what,
      this.etcd
        .ifAll([[key, 'Value', '==', value]])
        .then(this.etcd.client.delete().key(key))
        .commit(),
    );
  }

  /** Queues the record's releases durably, then tries to apply them: a DEL never waits for etcd. */
  releaseLater(row: EndpointRow): void {
    for (const k of this.keysOf(row)) this.store.queueRelease({ ip: k.ip, containerId: row.containerId, ifname: row.ifname, value: this.recordOf(row) });
    void this.drainReleases();
  }

  async drainReleases(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (const r of this.store.queuedReleases()) {
        const key = ipKey(isIPv6(r.ip) && this.v6 ? this.v6.block : this.v4.block, r.ip);
        // delete only if the key is still this attachment's record: never someone else's later claim
        let value = r.value;
        if (value === null) {
          const current = await this.etcd.call(`reading ${r.ip}`, this.etcd.client.get(key).string());
          const holder = current === null ? undefined : parseRecord(checkIpRecord, key, current);
          value = holder?.containerId === r.containerId && holder.ifname === r.ifname ? current : null;
        }
        if (value !== null) await this.deleteIfStill(`releasing ${r.ip}`, key, value);
        this.store.dropRelease(r.ip);
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
    const known = new Set(local.flatMap((r) => this.keysOf(r).map((k) => k.ip)));
    const queued = new Set(this.store.queuedReleases().map((r) => r.ip));
    const freed: string[] = [];
    for (const h of this.held) {
      const keys = await this.etcd.call(`listing the IPs of ${h.block}`, this.etcd.client.getAll().prefix(ipPrefix(h.block)).strings());
      for (const [key, value] of Object.entries(keys)) {
        const ip = key.slice(ipPrefix(h.block).length);
        if (parseRecord(checkIpRecord, key, value).node !== this.node || known.has(ip) || queued.has(ip)) continue;
        await this.deleteIfStill(`freeing ${ip}`, key, value);
        freed.push(ip);
      }
    }
    return freed;
  }
}
