// The node registry: this node's registration under a kept-alive lease, and the other nodes' registrations
// programmed into the overlay from a watch plus a periodic resync. Ownership of this node's blocks is checked
// again whenever it registers (after a lost lease) and at every resync: a node whose block was taken over
// while its lease had expired stops allocating in it instead of serving it beside its new owner.
import type { Lease, Watcher } from 'etcd3';
import type { EtcdSession } from '../../etcd/connect';
import { blockKey, NODES, nodeKey, parseRecord } from '../../etcd/layout';
import type { NodeRecord } from '../../etcd/records';
import { checkBlockRecord, checkNodeRecord } from '../../generated/validators';
import type { Logger } from '../../log/logger';
import type { Overlay } from '../overlay';
import { type HeldBlock, stillHeld } from './blocks';

/** A missed watch event is repaired within one period. */
export const RESYNC_MS = 15_000;

export class NodeRegistry {
  private lease?: Lease;
  private watcher?: Watcher;
  private timer?: NodeJS.Timeout;
  private closed = false;
  self?: NodeRecord;
  held: HeldBlock[] = [];

  constructor(
    private readonly etcd: EtcdSession,
    private readonly name: string,
    private readonly leaseTtlSeconds: number,
    private readonly log: Logger,
    /** Called whenever ownership of a held block is found lost. */
    private readonly onLost: (why: string) => void,
  ) {}

  /** A new lease, kept alive; when it is lost (etcd unreachable longer than its TTL) the node registers again. */
  async grant(): Promise<string> {
    const lease = this.etcd.client.lease(this.leaseTtlSeconds);
    lease.on('lost', (err) => {
      if (this.closed || lease !== this.lease) return;
      this.log.warn('etcd lease lost; registering again', { error: err.message });
      const retry = () =>
        void this.registerAgain().catch((e: Error) => {
          this.log.warn('registering again failed; retrying', { error: e.message });
          if (!this.closed) setTimeout(retry, 2000).unref();
        });
      retry();
    });
    this.lease = lease;
    return this.etcd.call('granting the node lease', lease.grant());
  }

  /** After a lost lease: the registration comes back only with every held block still this node's, in one transaction. */
  private async registerAgain(): Promise<void> {
    const leaseId = await this.grant();
    const res = await this.etcd.call(
      'registering the node again',
      this.etcd
        .ifAll(stillHeld(this.held))
        .then(this.etcd.client.put(nodeKey(this.name)).value(JSON.stringify(this.self)).lease(leaseId))
        .commit(),
    );
    if (res.succeeded) this.log.info('registered again under a new lease', { node: this.name });
    else await this.checkOwnership();
  }

  /** Re-reads the held blocks: undefined while each record is as this node wrote it; else why it is lost (told to onLost too). */
  async checkOwnership(): Promise<string | undefined> {
    for (const h of this.held) {
      const now = await this.etcd.call(`reading block ${h.block}`, this.etcd.client.get(blockKey(h.block)).string());
      if (now !== h.record) {
        const owner = now === null ? 'nobody (it was removed)' : parseRecord(checkBlockRecord, blockKey(h.block), now).node;
        const why = `block ${h.block} now belongs to ${owner}: it was taken over while this node's lease had expired`;
        this.onLost(why);
        return why;
      }
    }
    return undefined;
  }

  /** Programs the overlay from the registry: a watch, plus a resync every RESYNC_MS that also checks ownership. */
  async follow(overlay: Overlay): Promise<void> {
    const onPut = async (key: string, value: string) => {
      const peer = parseRecord(checkNodeRecord, key, value);
      if (peer.name === this.name) return;
      try {
        await overlay.addPeer(peer);
      } catch (err) {
        this.log.error('programming an overlay peer failed', { key, error: (err as Error).message });
      }
    };
    const onGone = async (name: string) => {
      if (name === this.name) return;
      await overlay.removePeer(name);
      this.log.info('overlay peer removed (node left or its lease expired)', { node: name });
    };
    const resync = async () => {
      const nodes = await this.etcd.call('listing nodes', this.etcd.client.getAll().prefix(NODES).strings());
      for (const [k, v] of Object.entries(nodes)) await onPut(k, v);
      const present = new Set(Object.keys(nodes).map((k) => k.slice(NODES.length)));
      for (const name of overlay.peerNames()) if (!present.has(name)) await onGone(name);
      await this.checkOwnership();
    };
    this.watcher = await this.etcd.call('watching nodes', this.etcd.client.watch().prefix(NODES).create());
    this.watcher.on(
      'put',
      (kv) => void onPut(kv.key.toString(), kv.value.toString()).catch((err: Error) => this.log.warn('a node record was refused', { error: err.message })),
    );
    this.watcher.on('delete', (kv) => void onGone(kv.key.toString().slice(NODES.length)));
    this.watcher.on('error', (err) => this.log.warn('etcd watch error', { error: err.message }));
    await resync();
    this.timer = setInterval(() => void resync().catch((err: Error) => this.log.warn('overlay resync failed', { error: err.message })), RESYNC_MS);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.watcher?.cancel().catch(() => undefined);
    // The lease is not revoked: a restart within its TTL keeps the node's routes on every peer; a node that
    // does not come back leaves the registry when the lease expires.
    this.lease?.release();
  }
}
