// A node's membership of the cluster: its lease and registration, the blocks it claimed with them, its IP
// claims, and the overlay it follows. The daemon joins before it serves and leaves on SIGTERM.

import type { EtcdOptions, EtcdSession } from '../../etcd/connect';
import type { Logger } from '../../log/logger';
import type { Overlay } from '../overlay';
import type { Store } from '../store';
import { type BlockRequest, claimBlocks, heldV4, heldV6 } from './blocks';
import { IpClaims } from './claims';
import { NodeRegistry } from './registry';

export interface ClusterOptions extends EtcdOptions {
  nodeName: string;
  nodeIp: string;
  clusterCidr: string;
  blockPrefix: number;
  /** Dual stack: the IPv6 pod network, cut into blocks of `blockPrefix6`. */
  clusterCidr6?: string;
  blockPrefix6: number;
  leaseTtlSeconds: number;
}

export class ClusterMember {
  private lostWhy?: string;
  private drainTimer?: NodeJS.Timeout;
  readonly claims: IpClaims;

  private constructor(
    private readonly etcd: EtcdSession,
    private readonly registry: NodeRegistry,
    store: Store,
    opts: ClusterOptions,
    private readonly log: Logger,
  ) {
    this.claims = new IpClaims(etcd, store, opts.nodeName, registry.held, log, {
      lostWhy: () => this.lostWhy,
      check: () => registry.checkOwnership(),
    });
  }

  /** Registers under a new lease and claims this node's blocks in one transaction (see blocks.ts). */
  static async join(etcd: EtcdSession, opts: ClusterOptions, vtepMac: string, store: Store, log: Logger): Promise<ClusterMember> {
    let member: ClusterMember | undefined;
    const registry = new NodeRegistry(etcd, opts.nodeName, opts.leaseTtlSeconds, log, (why) => member?.lose(why));
    try {
      const leaseId = await registry.grant();
      const requests: BlockRequest[] = [
        { clusterCidr: opts.clusterCidr, blockPrefix: opts.blockPrefix },
        ...(opts.clusterCidr6 ? [{ clusterCidr: opts.clusterCidr6, blockPrefix: opts.blockPrefix6 }] : []),
      ];
      const self = { name: opts.nodeName, nodeIp: opts.nodeIp, vtepMac };
      ({ held: registry.held, registration: registry.self } = await claimBlocks(etcd, self, requests, leaseId, log));
    } catch (err) {
      await registry.close();
      throw err;
    }
    member = new ClusterMember(etcd, registry, store, opts, log);
    return member;
  }

  get block(): string {
    return heldV4(this.registry.held).block;
  }

  get block6(): string | undefined {
    return heldV6(this.registry.held)?.block;
  }

  private lose(why: string): void {
    if (this.lostWhy) return;
    this.lostWhy = why;
    this.log.error('this node no longer owns its pod block: ADDs are refused until the netplugin is restarted', { why });
  }

  /** Programs the overlay from the registry, and applies releases queued while etcd was away (every 2 s). */
  async follow(overlay: Overlay): Promise<void> {
    await this.registry.follow(overlay);
    await this.claims.drainReleases();
    this.drainTimer = setInterval(() => void this.claims.drainReleases(), 2_000);
  }

  async close(): Promise<void> {
    clearInterval(this.drainTimer);
    await this.registry.close();
    this.etcd.close();
  }
}
