// What the netplugin does for each request, independent of HTTP: allocation, datapath, records, rollback.
// Every path is all or nothing: what an ADD made is undone when anything after it fails (the store's
// commit, the kernel's mark, a caller that gave up), and a record the store refuses to remove keeps its
// addresses held until the removal succeeds. At start the kernel is compared with the store and nothing
// live is ever deleted (reconcile).
import { attachmentId } from '../api/routes';
import type { Endpoint, FixLeaksRequest, FixOutcome, FixRequest, GcRequest, PodAttr, RspAddPod, RspCheckPod, RspDelPod, RspFixLeaks, RspGc } from '../api/wire';
import { CniError, ErrorCode, PluginErrorCode } from '../errors';
import { bigIntToIpv6, intToIpv4, ipv4ToInt, macForIpv4, parseAddress, parseUnicastMac } from '../ip/ip';
import { hostVethName, interfaceNameProblem } from '../linux/ifname';
import { formatMark, MAX_CONTAINER_ID_BYTES, type OwnershipMark, ownershipOf, parseMark } from '../linux/mark';
import type { NetnsHandle } from '../netns/netns';
import type { IpClaims } from './cluster/claims';
import { KeyedMutex } from './concurrency';
import type { Datapath } from './datapath';
import type { Pool4, Pool6 } from './ipam';
import type { Metrics } from './metrics';
import { resolvePodNetns } from './podns';
import type { EndpointRow, Store } from './store';

// What the service depends on, each as narrow as it is used: the daemon passes the real ones, the unit tests
// (test/unit/service.test.ts) in-memory fakes.
/** The attachment records: the embedded store. */
export type AttachmentStore = Pick<Store, 'get' | 'holderOf' | 'all' | 'insert' | 'setState' | 'remove' | 'meta' | 'requireSpace'>;
/** The kernel side: the datapath. */
export type Kernel = Pick<Datapath, 'attach' | 'detach' | 'mark' | 'observe' | 'bridgePorts' | 'hostPort' | 'groups'>;
/** IP ownership beyond this node: cluster mode's claims in etcd. */
export type AddressClaims = Pick<IpClaims, 'claim' | 'releaseLater' | 'reconcile' | 'adopt'>;
export interface ServiceLog {
  error(message: string, meta?: object): unknown;
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

/** What an ADD asks for beyond its identity (its configuration, carried on the wire by the adapter). */
interface AddRequest {
  defaultRoute: boolean;
  hairpin: boolean;
  ipv4?: number;
  ipv6?: string;
  mac?: string;
}

/** What start-up found, comparing the kernel with the store. */
export interface Reconciled {
  /** ADDs a crash interrupted before their runtime was answered: undone. */
  rolledBack: string[];
  /** Live attachments the store had lost: records rebuilt from their ownership marks. */
  adopted: string[];
  /** Records left pending by a lost commit although the kernel says their runtime was answered: made ready. */
  repaired: string[];
  /** Ready records whose veth is gone: kept until their runtime's DEL (or GC) frees them. */
  staleRecords: string[];
  /** Links on the bridge that are not provably ours: left alone. */
  foreign: string[];
  /** Marked veths that could not be adopted (their address is held by another live record): left alone. */
  unadoptable: string[];
}

function targetOf(attr: PodAttr): Target {
  const containerId = attr.CNI_CONTAINERID || attr.K8S_POD_INFRA_CONTAINER_ID;
  if (!containerId) throw new CniError(ErrorCode.InvalidEnv, 'the request names no container (CNI_CONTAINERID or K8S_POD_INFRA_CONTAINER_ID)');
  const ifname = attr.CNI_IFNAME || 'eth0';
  const problem = interfaceNameProblem(ifname);
  if (problem) throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME ${JSON.stringify(ifname)} ${problem}`);
  return { containerId, ifname };
}

const abandoned = () => new CniError(ErrorCode.TryAgainLater, 'the caller closed its connection before the answer: the ADD was not made, or undone');
const isoMs = (iso: string) => Date.parse(iso);

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
  /**
   * Records whose removal the store refused (a full disk), by attachment id: their kernel side is gone and
   * their addresses stay held until the removal succeeds (retried by the daemon's timer and by the next
   * request for the same attachment).
   */
  private readonly deferred = new Map<string, { row: EndpointRow; freesAddresses: boolean }>();

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

  private markOf(row: EndpointRow): string {
    return formatMark({
      containerId: row.containerId,
      ifname: row.ifname,
      ipv4: intToIpv4(row.ipv4),
      ...(row.ipv6 ? { ipv6: row.ipv6 } : {}),
      mac: row.mac,
      createdAtMs: isoMs(row.createdAt),
    });
  }

  private markUsed(row: EndpointRow): void {
    this.pool4.markUsed(row.ipv4);
    if (row.ipv6) this.pool6?.markUsed(row.ipv6);
    this.metrics.ipsInUse.set(this.pool4.inUse);
  }

  private markFree(row: EndpointRow): void {
    this.pool4.markFree(row.ipv4);
    if (row.ipv6) this.pool6?.markFree(row.ipv6);
    this.metrics.ipsInUse.set(this.pool4.inUse);
  }

  /**
   * Removes a record, then frees its addresses here and (cluster mode) queues their release in etcd. When the
   * store refuses the removal, the addresses stay held and the removal is retried later; the store's error is
   * thrown. `freesAddresses: false` is for addresses an earlier attachment holds in etcd: they stay held.
   */
  private free(row: EndpointRow, freesAddresses = true): void {
    const id = attachmentId(row.containerId, row.ifname);
    try {
      this.store.remove(row.containerId, row.ifname);
    } catch (err) {
      this.deferred.set(id, { row, freesAddresses });
      this.metrics.deferredRemovals.set(this.deferred.size);
      this.log.warn('the store refused to remove a record: its addresses stay held until it can', { attachment: id, error: (err as Error).message });
      throw err;
    }
    this.deferred.delete(id);
    this.metrics.deferredRemovals.set(this.deferred.size);
    if (!freesAddresses) return;
    try {
      this.claims?.releaseLater(row);
    } catch (err) {
      // the etcd key stays claimed; the next start's reconcile frees keys no record explains
      this.log.warn('queueing the etcd release failed', { attachment: id, error: (err as Error).message });
    }
    this.markFree(row);
  }

  /** Retries deferred removals: all of them (the daemon's timer), or one attachment's (its next request), which throws while it still fails. */
  finishDeferred(id?: string): void {
    for (const [key, d] of [...this.deferred]) {
      if (id !== undefined && key !== id) continue;
      try {
        this.free(d.row, d.freesAddresses);
        this.log.info('a deferred record removal succeeded', { attachment: key });
      } catch (err) {
        if (id !== undefined) throw err;
      }
    }
  }

  /** Undoes what an ADD made (veth, record, addresses) and throws `cause`. */
  private async undo(row: EndpointRow, cause: unknown): Promise<never> {
    try {
      await this.kernel.detach(row.hostVeth);
    } catch (err) {
      // the record stays (pending) with its addresses held: the veth is still there, and start-up undoes both
      this.log.error('undoing an ADD: the veth could not be removed', { hostVeth: row.hostVeth, error: (err as Error).message });
      throw cause;
    }
    try {
      this.free(row);
    } catch {
      /* deferred: the cause below is the answer */
    }
    throw cause;
  }

  private requestOf(attr: PodAttr, t: Target): AddRequest {
    const req: AddRequest = { defaultRoute: attr.CONTIV_DEFAULT_ROUTE ?? t.ifname === 'eth0', hairpin: attr.CONTIV_HAIRPIN ?? true };
    const refuse = (what: string, why: string) => new CniError(ErrorCode.InvalidConfig, `requested ${what}: ${why}`, 'nothing was allocated');
    for (const text of attr.CONTIV_IPS ?? []) {
      let a: ReturnType<typeof parseAddress>;
      try {
        a = parseAddress(text);
      } catch (err) {
        throw refuse(`IP ${text}`, (err as Error).message);
      }
      const pool = a.family === 4 ? this.pool4 : this.pool6;
      if (!pool) throw refuse(`IP ${text}`, 'this netplugin has no IPv6 pool (--subnet6)');
      if (a.prefix !== undefined && a.prefix !== pool.cidr.prefix) throw refuse(`IP ${text}`, `the pool ${pool.text} has prefix /${pool.cidr.prefix}`);
      if ((a.family === 4 ? req.ipv4 : req.ipv6) !== undefined)
        throw refuse('IPs', `more than one IPv${a.family} address (${(attr.CONTIV_IPS ?? []).join(', ')})`);
      if (!pool.accepts(a.address))
        throw refuse(`IP ${a.address}`, `not an assignable address of this node's pool ${pool.text} (its network, gateway and broadcast addresses are not)`);
      if (a.family === 4) req.ipv4 = ipv4ToInt(a.address);
      else req.ipv6 = a.address;
    }
    if (attr.CONTIV_MAC !== undefined) {
      try {
        req.mac = parseUnicastMac(attr.CONTIV_MAC);
      } catch (err) {
        throw refuse(`MAC ${attr.CONTIV_MAC}`, (err as Error).message);
      }
    }
    return req;
  }

  /** Names who holds a requested address or MAC. */
  private inUse(what: string, holder: EndpointRow | undefined): CniError {
    return new CniError(
      PluginErrorCode.AddressInUse,
      `requested ${what} is in use${holder ? ` by ${attachmentId(holder.containerId, holder.ifname)}` : ''}`,
      'nothing was allocated',
    );
  }

  async addPod(attr: PodAttr, opts: { signal?: AbortSignal } = {}): Promise<RspAddPod> {
    const t = targetOf(attr);
    if (Buffer.byteLength(t.containerId) > MAX_CONTAINER_ID_BYTES)
      throw new CniError(
        ErrorCode.InvalidEnv,
        `container id is longer than ${MAX_CONTAINER_ID_BYTES} bytes`,
        'its attachment could not carry its ownership mark',
      );
    const req = this.requestOf(attr, t);
    const id = attachmentId(t.containerId, t.ifname);
    return this.locks.run(id, async () => {
      this.finishDeferred(id);
      const existing = this.store.get(t.containerId, t.ifname);
      if (existing) {
        throw new CniError(
          PluginErrorCode.AlreadyAttached,
          `an interface of the requested name already exists: ${t.ifname} of container ${t.containerId} has ${intToIpv4(existing.ipv4)}`,
          'DEL it first; the existing attachment is left untouched',
        );
      }
      // a state dir with no room is refused before anything is made
      this.store.requireSpace();
      if (opts.signal?.aborted) {
        this.metrics.abandonedAdds.inc();
        throw abandoned();
      }
      const phase = this.metrics.phaseTimer();
      const ns = this.resolvePod(attr.CNI_NETNS, { dev: attr.CONTIV_NETNS_DEV, ino: attr.CONTIV_NETNS_INODE });
      phase('namespace');
      try {
        for (;;) {
          const row = this.reserve(t, attr, req);
          phase('reserve');
          const wired = await this.wire(row, ns, req);
          phase('kernel');
          if (!wired) {
            if (req.ipv4 !== undefined || req.ipv6 !== undefined) throw this.inUse('IP', undefined);
            continue;
          }
          await this.commitReady(row, opts.signal);
          phase('ready');
          this.log.info('pod attached', {
            containerId: t.containerId,
            ifname: t.ifname,
            ip: intToIpv4(row.ipv4),
            ipv6: row.ipv6,
            hostVeth: row.hostVeth,
            netns: attr.CNI_NETNS,
            origNetns: attr.CONTIV_ORIG_NETNS,
          });
          return { ...this.rsp(row), defaultroute: req.defaultRoute };
        }
      } finally {
        ns.close();
      }
    });
  }

  /**
   * Picks the addresses (the requested ones, or free ones from the pools) and records them as pending, in one
   * transaction; they stay marked used here until the attachment is freed. Synchronous: two ADDs asking for
   * one address cannot both get it.
   */
  private reserve(t: Target, attr: PodAttr, req: AddRequest): EndpointRow {
    if (req.ipv4 !== undefined && this.pool4.isUsed(req.ipv4)) throw this.inUse(`IP ${intToIpv4(req.ipv4)}`, this.store.holderOf({ ipv4: req.ipv4 }));
    if (req.ipv6 !== undefined && this.pool6?.isUsed(req.ipv6)) throw this.inUse(`IP ${req.ipv6}`, this.store.holderOf({ ipv6: req.ipv6 }));
    if (req.mac !== undefined) {
      const holder = this.store.holderOf({ mac: req.mac });
      if (holder) throw this.inUse(`MAC ${req.mac}`, holder);
    }
    const ipv4 = req.ipv4 ?? this.pool4.next();
    if (ipv4 === undefined) throw new CniError(PluginErrorCode.PoolExhausted, `no free IPv4 address left in ${this.pool4.text}`);
    const ipv6 = this.pool6 ? (req.ipv6 ?? this.pool6.next()) : undefined;
    if (this.pool6 && ipv6 === undefined) throw new CniError(PluginErrorCode.PoolExhausted, 'no free IPv6 address left');
    const row: EndpointRow = {
      containerId: t.containerId,
      ifname: t.ifname,
      ipv4,
      ipv6: ipv6 ?? null,
      hostVeth: hostVethName(t.containerId, t.ifname),
      mac: req.mac ?? macForIpv4(ipv4),
      netns: attr.CONTIV_ORIG_NETNS ?? attr.CNI_NETNS ?? '',
      podName: attr.K8S_POD_NAME ?? '',
      podNamespace: attr.K8S_POD_NAMESPACE ?? '',
      state: 'pending',
      createdAt: new Date().toISOString(),
      origin: 'add',
    };
    // the cursors follow what the pools picked; a requested address does not move them
    const cursor = { ...(req.ipv4 === undefined ? { cursor4: String(ipv4) } : {}), ...(ipv6 && req.ipv6 === undefined ? { cursor6: ipv6 } : {}) };
    this.store.insert(row, cursor);
    this.markUsed(row);
    return row;
  }

  /**
   * The kernel side, and in cluster mode the addresses' claim in etcd at the same time: neither waits for
   * the other. Whatever fails is undone before the error is answered (the veth, the record, a claim that may
   * have landed), so nothing is half-made. false: an earlier attachment holds the addresses in etcd; they
   * stay marked used here and the caller tries the next ones.
   */
  private async wire(row: EndpointRow, ns: NetnsHandle, req: AddRequest): Promise<boolean> {
    const [claim, attach] = await Promise.allSettled([
      this.claims ? this.claims.claim(row) : Promise.resolve(true),
      this.kernel.attach({
        ns,
        hostVeth: row.hostVeth,
        ifname: row.ifname,
        mac: row.mac,
        ipv4: { address: intToIpv4(row.ipv4), prefix: this.pool4.cidr.prefix },
        ...(row.ipv6 && this.pool6 ? { ipv6: { address: row.ipv6, prefix: this.pool6.cidr.prefix } } : {}),
        defaultRoute: req.defaultRoute,
        hairpin: req.hairpin,
      }),
    ]);
    if (claim.status === 'fulfilled' && claim.value && attach.status === 'fulfilled') return true;
    if (attach.status === 'fulfilled') await this.kernel.detach(row.hostVeth);
    const held = claim.status === 'fulfilled' && !claim.value;
    if (held) this.log.warn('addresses held in etcd by an earlier attachment; trying the next', { ip: intToIpv4(row.ipv4), ipv6: row.ipv6 });
    try {
      // a claim that failed on a timeout may still have landed: its release only deletes our own record
      this.free(row, !held);
    } catch {
      /* deferred; the kernel side is gone and the addresses stay held */
    }
    if (claim.status === 'rejected') throw claim.reason;
    if (attach.status === 'rejected') throw attach.reason;
    return false;
  }

  /**
   * The ready step: the ownership mark into the kernel and the record's durable commit, overlapped. The
   * runtime is answered only after both, so a mark in the kernel means an answered ADD. Anything failing
   * here, or a caller that gave up, undoes the whole ADD.
   */
  private async commitReady(row: EndpointRow, signal?: AbortSignal): Promise<void> {
    const gaveUp = () => {
      this.metrics.abandonedAdds.inc();
      return this.undo(row, abandoned());
    };
    if (signal?.aborted) await gaveUp();
    const marking = this.kernel.mark(row.hostVeth, this.markOf(row));
    let failure: unknown;
    try {
      this.store.setState(row.containerId, row.ifname, 'ready');
      row.state = 'ready';
    } catch (err) {
      failure = err;
    }
    try {
      await marking;
    } catch (err) {
      failure ??= err;
    }
    if (failure !== undefined) await this.undo(row, failure);
    if (signal?.aborted) await gaveUp();
  }

  /**
   * An ADD whose answer could not be delivered (the caller's connection closed as it was sent) is undone like
   * a failed one: the runtime was told nothing, or that it failed. Only the attachment that answer described.
   */
  async undoAdd(attr: PodAttr, answered: RspAddPod): Promise<void> {
    const t = targetOf(attr);
    await this.locks.run(attachmentId(t.containerId, t.ifname), async () => {
      const row = this.store.get(t.containerId, t.ifname);
      if (!row || this.cidrs(row).ipaddress !== answered.ipaddress || row.mac !== answered.mac) return;
      this.metrics.abandonedAdds.inc();
      this.log.warn('the caller closed its connection before the answer arrived: undoing the ADD', { attachment: attachmentId(t.containerId, t.ifname) });
      await this.undo(row, abandoned()).catch(() => undefined);
    });
  }

  /**
   * Frees by container id alone: no namespace is needed, and an unknown container is not an error.
   * `queuedAt` (ms) is set for a DEL the adapter queued while the netplugin was unreachable: an attachment
   * made after it was queued is not the one it meant, and is left alone.
   */
  async delPod(attr: PodAttr, opts: { queuedAt?: number } = {}): Promise<RspDelPod> {
    const t = targetOf(attr);
    const id = attachmentId(t.containerId, t.ifname);
    return this.locks.run(id, async () => {
      this.finishDeferred(id);
      const row = this.store.get(t.containerId, t.ifname);
      const hostVeth = row?.hostVeth ?? hostVethName(t.containerId, t.ifname);
      if (opts.queuedAt !== undefined && (await this.madeAfter(row, hostVeth, opts.queuedAt))) {
        this.log.info('a queued DEL is older than the attachment it names: left alone', { attachment: id, queuedAt: new Date(opts.queuedAt).toISOString() });
        return { result: 0, endpointid: id };
      }
      // with no room to remove the record, nothing is touched: the runtime's retry finds the pod as it was
      if (row) this.store.requireSpace();
      const removedVeth = await this.kernel.detach(hostVeth);
      if (row) {
        try {
          this.free(row);
        } catch (err) {
          throw new CniError(
            ErrorCode.Io,
            `${(err as Error).message}: ${hostVeth} is removed, but the record of ${id} could not be; its addresses stay held until it is`,
            'DEL again once the state dir has room (the netplugin also retries on its own)',
            { cause: err },
          );
        }
      }
      this.log.info('pod detached', {
        containerId: t.containerId,
        ifname: t.ifname,
        ip: row ? intToIpv4(row.ipv4) : undefined,
        removedVeth,
        hadRecord: !!row,
        netns: attr.CNI_NETNS ?? '',
        ...(opts.queuedAt !== undefined ? { queuedAt: new Date(opts.queuedAt).toISOString() } : {}),
      });
      return { result: 0, endpointid: id };
    });
  }

  /** Whether the attachment (its record, or without one its veth's mark) was made after `ms`. */
  private async madeAfter(row: EndpointRow | undefined, hostVeth: string, ms: number): Promise<boolean> {
    if (row) return isoMs(row.createdAt) > ms;
    const mark = parseMark((await this.kernel.hostPort(hostVeth))?.alias);
    return mark !== undefined && mark.createdAtMs > ms;
  }

  async checkPod(attr: PodAttr): Promise<RspCheckPod> {
    const t = targetOf(attr);
    const row = this.store.get(t.containerId, t.ifname);
    if (row?.state !== 'ready') throw new CniError(ErrorCode.ContainerUnknown, `no attachment ${t.ifname} for container ${t.containerId}`);
    const ns = this.resolvePod(attr.CNI_NETNS, { dev: attr.CONTIV_NETNS_DEV, ino: attr.CONTIV_NETNS_INODE });
    try {
      return { ...this.rsp(row), observed: await this.kernel.observe(ns, t.ifname) };
    } finally {
      ns.close();
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
      origin: row.origin,
    }));
  }

  /**
   * Start-up: the kernel compared with the store, before any request is served. Only what is proven dead is
   * removed: a veth in the pending group, or a pending record whose veth carries no mark, is an ADD whose
   * runtime was never answered (undone); a veth in the deleting group is a DEL that was interrupted
   * (finished; its record waits for the runtime's retry). A marked veth is a live attachment: its record is
   * kept, repaired (pending -> ready) or, when the store lost it, rebuilt from the mark (adopted), loudly.
   * Anything else on the bridge is not provably ours and is left alone. A ready record whose veth is gone is
   * kept until its runtime's DEL.
   */
  async reconcile(): Promise<Reconciled> {
    const out: Reconciled = { rolledBack: [], adopted: [], repaired: [], staleRecords: [], foreign: [], unadoptable: [] };
    const ports = new Map((await this.kernel.bridgePorts()).map((p) => [p.name, p]));
    for (const p of [...ports.values()].filter((p) => p.group === this.kernel.groups.deleting)) {
      await this.kernel.detach(p.name);
      ports.delete(p.name);
    }
    for (const row of this.store.all()) {
      const id = attachmentId(row.containerId, row.ifname);
      const port = ports.get(row.hostVeth);
      ports.delete(row.hostVeth);
      const inProgress = port?.group === this.kernel.groups.pending;
      const marked = parseMark(port?.alias) !== undefined && !inProgress;
      // never answered: its veth never left the pending group, or its record never left pending unmarked
      if (inProgress || (row.state === 'pending' && !marked)) {
        if (port) await this.kernel.detach(row.hostVeth);
        this.free(row);
        out.rolledBack.push(id);
        continue;
      }
      if (!this.pool4.contains(row.ipv4)) {
        throw new Error(`record ${id} has ${intToIpv4(row.ipv4)}, outside --subnet: start with the subnet the state dir was made with`);
      }
      if (row.state === 'pending') {
        this.store.setState(row.containerId, row.ifname, 'ready');
        out.repaired.push(id);
      }
      // a release without marks left its veths unmarked: they get theirs now
      if (port && !marked) await this.kernel.mark(row.hostVeth, this.markOf(row));
      this.markUsed(row);
      if (!port) out.staleRecords.push(id);
    }
    for (const port of ports.values()) {
      const mark = ownershipOf(port);
      if (port.group === this.kernel.groups.pending) {
        // an ADD whose record was lost with the store, never answered: nothing owns it
        await this.kernel.detach(port.name);
        out.rolledBack.push(port.name);
      } else if (!mark) {
        out.foreign.push(port.name);
      } else {
        const id = attachmentId(mark.containerId, mark.ifname);
        // at start, a record holding the same address without its veth is stale: the live attachment wins
        const why = await this.adopt(port.name, mark, async (holder) => {
          const i = out.staleRecords.indexOf(attachmentId(holder.containerId, holder.ifname));
          if (i >= 0) out.staleRecords.splice(i, 1);
          return i >= 0;
        });
        (why ? out.unadoptable : out.adopted).push(id);
      }
    }
    const cursor4 = this.store.meta('cursor4');
    if (cursor4) this.pool4.resumeAfter(Number(cursor4));
    const cursor6 = this.store.meta('cursor6');
    if (cursor6) this.pool6?.resumeAfter(cursor6);
    const freedInEtcd = (await this.claims?.reconcile(this.store.all())) ?? [];
    if (freedInEtcd.length) this.log.warn('freed etcd IP keys with no local record (an ADD interrupted by a crash)', { ips: freedInEtcd });
    this.metrics.ipsInUse.set(this.pool4.inUse);
    this.metrics.foreignPorts.set(out.foreign.length);
    if (out.adopted.length)
      this.log.error('the store had lost live attachments: their records were rebuilt from the ownership marks on their veths', {
        adopted: out.adopted,
        stateDir: 'see /endpoints (origin: adopted)',
      });
    if (out.foreign.length) this.log.warn('links on the bridge that are not ours were left alone', { foreign: out.foreign });
    if (out.unadoptable.length) this.log.error('marked veths whose address another live record holds were left alone', { unadoptable: out.unadoptable });
    this.log.info('reconciled state with the kernel', { records: this.pool4.inUse, ...out });
    return out;
  }

  /**
   * Rebuilds the record of a live attachment the store lost, from its mark (and in cluster mode its etcd
   * record); undefined when adopted, else why not. A record holding one of its addresses is dropped when
   * `isStale` says its veth is gone (the live attachment wins); a live holder leaves both alone.
   */
  private async adopt(hostVeth: string, mark: OwnershipMark, isStale: (holder: EndpointRow) => Promise<boolean>): Promise<string | undefined> {
    const id = attachmentId(mark.containerId, mark.ifname);
    const ipv4 = ipv4ToInt(mark.ipv4);
    if (!this.pool4.contains(ipv4)) {
      throw new Error(`live attachment ${id} on ${hostVeth} has ${mark.ipv4}, outside --subnet: start with the subnet its pods were given`);
    }
    for (const holder of [this.store.holderOf({ ipv4 }), mark.ipv6 ? this.store.holderOf({ ipv6: mark.ipv6 }) : undefined]) {
      if (!holder) continue;
      const held = attachmentId(holder.containerId, holder.ifname);
      if (!(await isStale(holder))) return `its address is held by live attachment ${held}`;
      this.log.error('dropping a stale record: its address is held by a live attachment', { dropped: held, by: id, ip: mark.ipv4 });
      this.store.remove(holder.containerId, holder.ifname);
    }
    const row: EndpointRow = {
      containerId: mark.containerId,
      ifname: mark.ifname,
      ipv4,
      ipv6: mark.ipv6 ?? null,
      hostVeth,
      mac: mark.mac,
      netns: '',
      podName: '',
      podNamespace: '',
      state: 'ready',
      createdAt: new Date(mark.createdAtMs).toISOString(),
      origin: 'adopted',
    };
    const known = await this.claims?.adopt(row);
    if (known === false) return 'another attachment holds its address in etcd';
    this.store.insert(typeof known === 'object' ? { ...row, ...known } : row, {});
    this.markUsed(row);
    this.metrics.adopted.inc();
    return undefined;
  }

  /**
   * contivctl leaks --fix: each finding re-verified at the moment of acting, under the lock the attachment's
   * ADD and DEL take. A record is freed only while its veth is gone (no pod holds its address); a marked veth
   * without a record is a live pod, adopted, never deleted. Nothing made after the scan began is touched, and
   * what changed or vanished since is skipped, not an error.
   */
  async fixLeaks(req: FixLeaksRequest): Promise<RspFixLeaks> {
    const outcomes: FixOutcome[] = [];
    for (const finding of req.findings) outcomes.push({ finding, ...(await this.fixOne(finding, req.scanStartedAt)) });
    this.log.info('leaks --fix', { findings: req.findings.length, outcomes: outcomes.map((o) => o.action) });
    return { result: 0, outcomes };
  }

  private async fixOne(f: FixRequest, scanStartedAt: number): Promise<Omit<FixOutcome, 'finding'>> {
    const skipped = (reason: string) => ({ action: 'skipped' as const, reason });
    if (f.kind === 'stale-allocation') {
      return this.locks.run(attachmentId(f.containerId, f.ifname), async () => {
        const row = this.store.get(f.containerId, f.ifname);
        if (!row) return skipped('its record is gone');
        if (row.createdAt !== f.createdAt || isoMs(row.createdAt) > scanStartedAt) return skipped('its record changed since the scan');
        if (row.state !== 'ready') return skipped('it is being made');
        if (await this.kernel.hostPort(row.hostVeth)) return skipped(`its host veth ${row.hostVeth} exists`);
        try {
          this.free(row);
        } catch (err) {
          return skipped((err as Error).message);
        }
        this.log.warn('leaks --fix freed the record of an attachment whose veth is gone', { attachment: attachmentId(f.containerId, f.ifname) });
        return { action: 'freed' as const };
      });
    }
    const mark = ownershipOf({ name: f.hostVeth, alias: f.alias });
    if (!mark) return skipped('not our ownership mark');
    return this.locks.run(attachmentId(mark.containerId, mark.ifname), async () => {
      if (this.store.get(mark.containerId, mark.ifname)) return skipped('it has a record now');
      const now = await this.kernel.hostPort(f.hostVeth);
      if (!now?.onBridge) return skipped('its veth is gone from the bridge');
      if (now.alias !== f.alias || mark.createdAtMs > scanStartedAt) return skipped('its mark changed since the scan');
      const why = await this.adopt(f.hostVeth, mark, async (holder) => !(await this.kernel.hostPort(holder.hostVeth)));
      if (why) return skipped(why);
      this.log.error('leaks --fix adopted a live attachment the store had lost', { attachment: attachmentId(mark.containerId, mark.ifname) });
      return { action: 'adopted' as const };
    });
  }
}
