// What the netplugin does for each request, independent of HTTP: allocation, datapath, records, rollback.
import { attachmentId, type Endpoint, type GcRequest, type PodAttr, type RspAddPod, type RspCheckPod, type RspDelPod, type RspGc } from '../api/wire';
import { CniError, ErrorCode, PluginErrorCode } from '../errors';
import { bigIntToIpv6, intToIpv4, macForIpv4 } from '../ip/ip';
import { hostVethName, interfaceNameProblem } from '../linux/ifname';
import type { IpClaims } from './cluster/claims';
import type { Datapath } from './datapath';
import type { Pool4, Pool6 } from './ipam';
import type { Metrics } from './metrics';
import { KeyedMutex } from './mutex';
import { type PodNetns, resolvePodNetns } from './podns';
import type { EndpointRow, Store } from './store';

// What the service depends on, each as narrow as it is used: the daemon passes the real ones, the unit tests
// (test/unit/service.test.ts) in-memory fakes.
/** The attachment records: the embedded store. */
export type AttachmentStore = Pick<Store, 'get' | 'hasContainer' | 'all' | 'insert' | 'setState' | 'remove' | 'meta'>;
/** The kernel side: the datapath. */
export type Kernel = Pick<Datapath, 'attach' | 'detach' | 'observe' | 'hostVeths'>;
/** IP ownership beyond this node: cluster mode's claims in etcd. */
export type AddressClaims = Pick<IpClaims, 'claim' | 'releaseLater' | 'reconcile'>;
export interface ServiceLog {
  info(message: string, meta?: object): unknown;
  warn(message: string, meta?: object): unknown;
}

export interface ServiceDeps {
  store: AttachmentStore;
  kernel: Kernel;
  pool4: Pool4;
  pool6?: Pool6;
  /** Cluster mode: IP ownership in etcd on top of the local records. */
  claims?: AddressClaims;
  /** Opens a request's namespace (by default the contiv way, by the PID in /proc/<pid>/ns/net). */
  resolvePod?: typeof resolvePodNetns;
  log: ServiceLog;
  metrics: Metrics;
}

interface Target {
  containerId: string;
  ifname: string;
}

function targetOf(attr: PodAttr): Target {
  const containerId = attr.CNI_CONTAINERID || attr.K8S_POD_INFRA_CONTAINER_ID;
  if (!containerId) throw new CniError(ErrorCode.InvalidEnv, 'the request names no container (CNI_CONTAINERID or K8S_POD_INFRA_CONTAINER_ID)');
  const ifname = attr.CNI_IFNAME || 'eth0';
  const problem = interfaceNameProblem(ifname);
  if (problem) throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME ${JSON.stringify(ifname)} ${problem}`);
  return { containerId, ifname };
}

export class NetpluginService {
  private readonly locks = new KeyedMutex();
  private readonly store: AttachmentStore;
  private readonly kernel: Kernel;
  private readonly pool4: Pool4;
  private readonly pool6?: Pool6;
  private readonly claims?: AddressClaims;
  private readonly resolvePod: typeof resolvePodNetns;
  private readonly log: ServiceLog;
  private readonly metrics: Metrics;

  constructor(deps: ServiceDeps) {
    ({ store: this.store, kernel: this.kernel, pool4: this.pool4, pool6: this.pool6, claims: this.claims, log: this.log, metrics: this.metrics } = deps);
    this.resolvePod = deps.resolvePod ?? resolvePodNetns;
  }

  /** The record's addresses in CIDR form, as both the wire answer and /endpoints give them. */
  private cidrs(row: EndpointRow): { ipaddress: string; ipv6address?: string } {
    return {
      ipaddress: `${intToIpv4(row.ipv4)}/${this.pool4.cidr.prefix}`,
      ...(row.ipv6 && this.pool6 ? { ipv6address: `${row.ipv6}/${this.pool6.cidr.prefix}` } : {}),
    };
  }

  private rsp(row: EndpointRow): RspAddPod {
    return {
      result: 0,
      endpointid: attachmentId(row.containerId, row.ifname),
      ...this.cidrs(row),
      gateway: intToIpv4(this.pool4.gateway),
      ...(row.ipv6 && this.pool6 ? { ipv6gateway: bigIntToIpv6(this.pool6.gateway) } : {}),
      mac: row.mac,
      hostveth: row.hostVeth,
    };
  }

  /** Undoes a record here: its row and its addresses in the pools. */
  private forget(row: EndpointRow): void {
    this.store.remove(row.containerId, row.ifname);
    this.pool4.markFree(row.ipv4);
    if (row.ipv6) this.pool6?.markFree(row.ipv6);
    this.metrics.ipsInUse.set(this.pool4.inUse);
  }

  /** Frees an attachment's addresses: here at once, in etcd (cluster mode) as soon as etcd answers. */
  private free(row: EndpointRow): void {
    this.claims?.releaseLater(row);
    this.forget(row);
  }

  async addPod(attr: PodAttr): Promise<RspAddPod> {
    const t = targetOf(attr);
    return this.locks.run(attachmentId(t.containerId, t.ifname), async () => {
      const existing = this.store.get(t.containerId, t.ifname);
      if (existing) {
        throw new CniError(
          PluginErrorCode.AlreadyAttached,
          `an interface of the requested name already exists: ${t.ifname} of container ${t.containerId} has ${intToIpv4(existing.ipv4)}`,
          'DEL it first; the existing attachment is left untouched',
        );
      }
      const pod = this.resolvePod(attr.CNI_NETNS, { dev: attr.CONTIV_NETNS_DEV, ino: attr.CONTIV_NETNS_INODE });
      // a second interface (multus' net1, or eth1) must not fight the first for the default route
      const defaultRoute = !this.store.hasContainer(t.containerId);
      try {
        for (;;) {
          const row = this.reserve(t, attr);
          if (!(await this.wire(row, pod, defaultRoute))) continue;
          this.store.setState(t.containerId, t.ifname, 'ready');
          this.log.info('pod attached', {
            containerId: t.containerId,
            ifname: t.ifname,
            ip: intToIpv4(row.ipv4),
            ipv6: row.ipv6,
            hostVeth: row.hostVeth,
            netns: attr.CNI_NETNS,
            origNetns: attr.CONTIV_ORIG_NETNS,
          });
          return { ...this.rsp({ ...row, state: 'ready' }), defaultroute: defaultRoute };
        }
      } finally {
        pod.ns.close();
      }
    });
  }

  /**
   * Picks free addresses and records them as pending, in one transaction; they stay marked used here until
   * the attachment is freed.
   */
  private reserve(t: Target, attr: PodAttr): EndpointRow {
    const ipv4 = this.pool4.next();
    if (ipv4 === undefined)
      throw new CniError(PluginErrorCode.PoolExhausted, `no free IPv4 address left in ${intToIpv4(this.pool4.cidr.network)}/${this.pool4.cidr.prefix}`);
    const ipv6 = this.pool6?.next();
    if (this.pool6 && ipv6 === undefined) throw new CniError(PluginErrorCode.PoolExhausted, 'no free IPv6 address left');
    const row: EndpointRow = {
      containerId: t.containerId,
      ifname: t.ifname,
      ipv4,
      ipv6: ipv6 ?? null,
      hostVeth: hostVethName(t.containerId, t.ifname),
      mac: macForIpv4(ipv4),
      netns: attr.CONTIV_ORIG_NETNS ?? attr.CNI_NETNS ?? '',
      podName: attr.K8S_POD_NAME ?? '',
      podNamespace: attr.K8S_POD_NAMESPACE ?? '',
      state: 'pending',
      createdAt: new Date().toISOString(),
    };
    this.store.insert(row, { cursor4: String(ipv4), ...(ipv6 ? { cursor6: ipv6 } : {}) }, { durable: false });
    this.pool4.markUsed(ipv4);
    if (ipv6) this.pool6?.markUsed(ipv6);
    this.metrics.ipsInUse.set(this.pool4.inUse);
    return row;
  }

  /**
   * The kernel side, and in cluster mode the addresses' claim in etcd at the same time: neither waits for
   * the other. Whatever fails is undone before the error is answered (the veth, the record, a claim that may
   * have landed), so nothing is half-made. false: an earlier attachment holds the addresses in etcd; they
   * stay marked used here and the caller tries the next ones.
   */
  private async wire(row: EndpointRow, pod: PodNetns, defaultRoute: boolean): Promise<boolean> {
    const [claim, attach] = await Promise.allSettled([
      this.claims ? this.claims.claim(row) : Promise.resolve(true),
      this.kernel.attach({
        ns: pod.ns,
        pid: pod.pid,
        hostVeth: row.hostVeth,
        ifname: row.ifname,
        mac: row.mac,
        ipv4: { address: intToIpv4(row.ipv4), prefix: this.pool4.cidr.prefix },
        ...(row.ipv6 && this.pool6 ? { ipv6: { address: row.ipv6, prefix: this.pool6.cidr.prefix } } : {}),
        defaultRoute,
      }),
    ]);
    if (claim.status === 'fulfilled' && claim.value && attach.status === 'fulfilled') return true;
    if (attach.status === 'fulfilled') await this.kernel.detach(row.hostVeth);
    const held = claim.status === 'fulfilled' && !claim.value;
    if (held) {
      this.store.remove(row.containerId, row.ifname);
      this.log.warn('addresses held in etcd by an earlier attachment; trying the next', { ip: intToIpv4(row.ipv4), ipv6: row.ipv6 });
    } else {
      // a claim that failed on a timeout may still have landed: its release only deletes our own record
      this.free(row);
    }
    if (claim.status === 'rejected') throw claim.reason;
    if (attach.status === 'rejected') throw attach.reason;
    return false;
  }

  /** Frees by container id alone: no namespace is needed, and an unknown container is not an error. */
  async delPod(attr: PodAttr): Promise<RspDelPod> {
    const t = targetOf(attr);
    return this.locks.run(attachmentId(t.containerId, t.ifname), async () => {
      const row = this.store.get(t.containerId, t.ifname);
      const removedVeth = await this.kernel.detach(row?.hostVeth ?? hostVethName(t.containerId, t.ifname));
      if (row) this.free(row);
      this.log.info('pod detached', {
        containerId: t.containerId,
        ifname: t.ifname,
        ip: row ? intToIpv4(row.ipv4) : undefined,
        removedVeth,
        hadRecord: !!row,
        netns: attr.CNI_NETNS ?? '',
      });
      return { result: 0, endpointid: attachmentId(t.containerId, t.ifname) };
    });
  }

  async checkPod(attr: PodAttr): Promise<RspCheckPod> {
    const t = targetOf(attr);
    const row = this.store.get(t.containerId, t.ifname);
    if (row?.state !== 'ready') throw new CniError(ErrorCode.ContainerUnknown, `no attachment ${t.ifname} for container ${t.containerId}`);
    const pod = this.resolvePod(attr.CNI_NETNS, { dev: attr.CONTIV_NETNS_DEV, ino: attr.CONTIV_NETNS_INODE });
    try {
      return { ...this.rsp(row), observed: await this.kernel.observe(pod.ns, t.ifname) };
    } finally {
      pod.ns.close();
    }
  }

  async gc(req: GcRequest): Promise<RspGc> {
    const valid = new Set(req.validAttachments.map((a) => attachmentId(a.containerID, a.ifname)));
    const freed: { containerID: string; ifname: string }[] = [];
    for (const row of this.store.all()) {
      if (valid.has(attachmentId(row.containerId, row.ifname))) continue;
      await this.delPod({ CNI_CONTAINERID: row.containerId, CNI_IFNAME: row.ifname });
      freed.push({ containerID: row.containerId, ifname: row.ifname });
    }
    this.log.info('gc', { valid: valid.size, freed: freed.length });
    return { result: 0, freed };
  }

  endpoints(): Endpoint[] {
    return this.store.all().map((row) => ({
      containerId: row.containerId,
      ifname: row.ifname,
      ...this.cidrs(row),
      hostVeth: row.hostVeth,
      mac: row.mac,
      netns: row.netns,
      podName: row.podName,
      podNamespace: row.podNamespace,
      state: row.state,
      createdAt: row.createdAt,
    }));
  }

  /**
   * Start-up: loads allocations and compares records with the kernel. An ADD that a crash interrupted
   * (still pending) is rolled back, since its runtime got an error; a host veth of ours on our bridge
   * with no record is removed; a record whose veth is gone is kept (its runtime will DEL it) and logged.
   */
  async reconcile(): Promise<{ rolledBack: string[]; orphanVeths: string[]; staleRecords: string[] }> {
    const present = new Set(await this.kernel.hostVeths());
    const orphans = new Set(present);
    const rolledBack: string[] = [];
    const staleRecords: string[] = [];
    for (const row of this.store.all()) {
      const id = attachmentId(row.containerId, row.ifname);
      orphans.delete(row.hostVeth);
      if (row.state === 'pending') {
        await this.kernel.detach(row.hostVeth);
        this.free(row);
        rolledBack.push(id);
        continue;
      }
      if (!this.pool4.contains(row.ipv4)) {
        throw new Error(`record ${id} has ${intToIpv4(row.ipv4)}, outside --subnet: start with the subnet the state dir was made with`);
      }
      this.pool4.markUsed(row.ipv4);
      if (row.ipv6) this.pool6?.markUsed(row.ipv6);
      if (!present.has(row.hostVeth)) staleRecords.push(id);
    }
    const cursor4 = this.store.meta('cursor4');
    if (cursor4) this.pool4.resumeAfter(Number(cursor4));
    const cursor6 = this.store.meta('cursor6');
    if (cursor6) this.pool6?.resumeAfter(cursor6);
    const orphanVeths = [...orphans];
    for (const v of orphanVeths) await this.kernel.detach(v);
    const freedInEtcd = (await this.claims?.reconcile(this.store.all())) ?? [];
    if (freedInEtcd.length) this.log.warn('freed etcd IP keys with no local record (an ADD interrupted by a crash)', { ips: freedInEtcd });
    this.metrics.ipsInUse.set(this.pool4.inUse);
    this.log.info('reconciled state with the kernel', { records: this.pool4.inUse, rolledBack, orphanVeths, staleRecords });
    return { rolledBack, orphanVeths, staleRecords };
  }
}
