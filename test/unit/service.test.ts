// NetpluginService without root: its store, kernel, IP claims and namespace opener are in-memory fakes, so
// rollback, the claim-skip loop, the full-disk paths, abandoned ADDs, queued DELs, static addresses, GC and
// the start-up comparison of kernel and store are exercised on their own, every branch.
import { expect } from 'chai';
import type { PodAttr } from '../../src/api/wire';
import { CniError, ErrorCode, PluginErrorCode } from '../../src/errors';
import { intToIpv4, ipv4ToInt, macForIpv4 } from '../../src/ip/ip';
import { hostVethName } from '../../src/linux/ifname';
import { formatMark, linkGroups, parseMark } from '../../src/linux/mark';
import type { BridgePort, PodLink } from '../../src/netplugin/datapath';
import { Pool4, Pool6 } from '../../src/netplugin/ipam';
import { Metrics } from '../../src/netplugin/metrics';
import { type AddressClaims, type AttachmentStore, type Kernel, NetpluginService } from '../../src/netplugin/service';
import { type EndpointRow, StoreError } from '../../src/netplugin/store';

const full = () => new StoreError('the state dir /x is full', 'full', 'free space');

/** The embedded store's contract in memory, UNIQUE constraints included; it can be made full. */
class FakeStore implements AttachmentStore {
  readonly rows = new Map<string, EndpointRow>();
  readonly metaValues = new Map<string, string>();
  /** The disk is full: the preflight and every write fail. */
  full = false;
  /** Only removals fail (the disk filled after the preflight). */
  failRemove = false;
  failReady = false;
  get = (c: string, i: string) => this.rows.get(`${c}/${i}`);
  holderOf = (w: { ipv4: number } | { ipv6: string } | { mac: string }) =>
    [...this.rows.values()].find((r) => ('ipv4' in w ? r.ipv4 === w.ipv4 : 'ipv6' in w ? r.ipv6 === w.ipv6 : r.mac === w.mac));
  all = () => [...this.rows.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  requireSpace(): void {
    if (this.full) throw full();
  }
  insert(row: EndpointRow, cursor: Record<string, string>): void {
    if (this.full) throw full();
    for (const r of this.rows.values()) {
      if (r.ipv4 === row.ipv4 || (row.ipv6 && r.ipv6 === row.ipv6) || r.hostVeth === row.hostVeth) throw new Error('UNIQUE constraint failed');
    }
    if (this.rows.has(`${row.containerId}/${row.ifname}`)) throw new Error('UNIQUE constraint failed: primary key');
    this.rows.set(`${row.containerId}/${row.ifname}`, { ...row });
    for (const [k, v] of Object.entries(cursor)) this.metaValues.set(k, v);
  }
  setState(c: string, i: string, state: EndpointRow['state']): void {
    if (this.full || this.failReady) throw full();
    const r = this.rows.get(`${c}/${i}`);
    if (r) r.state = state;
  }
  remove(c: string, i: string): boolean {
    if (this.full || this.failRemove) throw full();
    return this.rows.delete(`${c}/${i}`);
  }
  meta = (k: string) => this.metaValues.get(k);
}

const GROUPS = linkGroups('fakebr');

/** The datapath's contract: veths by name with their alias and group; an attach or a mark can be made to fail. */
class FakeKernel implements Kernel {
  readonly groups = GROUPS;
  readonly veths = new Map<string, { alias?: string; group: number }>();
  readonly attached: PodLink[] = [];
  failAttach?: Error;
  failMark?: Error;
  /** Called inside attach, to act while an ADD is in the kernel (a caller giving up). */
  during?: () => void;
  async attach(p: PodLink): Promise<void> {
    if (this.failAttach) throw this.failAttach;
    this.veths.set(p.hostVeth, { group: GROUPS.pending });
    this.attached.push(p);
    this.during?.();
  }
  async mark(hostVeth: string, alias: string): Promise<void> {
    if (this.failMark) throw this.failMark;
    const v = this.veths.get(hostVeth);
    if (v) Object.assign(v, { alias, group: 0 });
  }
  async detach(hostVeth: string): Promise<boolean> {
    return this.veths.delete(hostVeth);
  }
  async observe(): Promise<string[]> {
    return this.attached.map((p) => `${p.ipv4.address}/${p.ipv4.prefix}`);
  }
  async bridgePorts(): Promise<BridgePort[]> {
    return [...this.veths].map(([name, v]) => ({ name, ...v }));
  }
  async hostPort(hostVeth: string): Promise<{ alias?: string; onBridge: boolean } | undefined> {
    const v = this.veths.get(hostVeth);
    return v && { alias: v.alias, onBridge: true };
  }
}

/** Cluster mode's claims: some IPs held by earlier attachments, or etcd unreachable. */
class FakeClaims implements AddressClaims {
  readonly held = new Set<string>();
  readonly claimed = new Set<string>();
  readonly releasedLater: string[] = [];
  /** etcd's records of this node's attachments, by IP (what adopt finds). */
  readonly records = new Map<string, { containerId: string; netns: string; podName: string; podNamespace: string; createdAt: string }>();
  unreachable = false;
  async claim(row: EndpointRow): Promise<boolean> {
    if (this.unreachable) throw new CniError(ErrorCode.TryAgainLater, 'etcd is unreachable');
    const ip = intToIpv4(row.ipv4);
    if (this.held.has(ip)) return false;
    this.claimed.add(ip);
    return true;
  }
  releaseLater(row: EndpointRow): void {
    this.releasedLater.push(intToIpv4(row.ipv4));
    this.claimed.delete(intToIpv4(row.ipv4));
  }
  async reconcile(): Promise<string[]> {
    return [];
  }
  async adopt(row: EndpointRow) {
    const r = this.records.get(intToIpv4(row.ipv4));
    if (!r) return true;
    if (r.containerId !== row.containerId) return false;
    return { netns: r.netns, podName: r.podName, podNamespace: r.podNamespace, createdAt: r.createdAt };
  }
}

const silent = { error: () => undefined, info: () => undefined, warn: () => undefined };

function setup(opts: { claims?: boolean; subnet?: string } = {}) {
  const store = new FakeStore();
  const kernel = new FakeKernel();
  const claims = opts.claims ? new FakeClaims() : undefined;
  let opened = 0;
  let closed = 0;
  const resolvePod = () => {
    opened++;
    return { path: '/proc/4242/ns/net', fd: -1, dev: 1, ino: 2, close: () => void closed++ };
  };
  const pool4 = new Pool4(opts.subnet ?? '10.9.0.0/24');
  const pool6 = new Pool6('fd00:9::/64');
  const metrics = new Metrics();
  const service = new NetpluginService({ store, kernel, pool4, pool6, claims, resolvePod, log: silent, metrics });
  const attr = (id: string, ifname = 'eth0', extra: Partial<PodAttr> = {}): PodAttr => ({
    CNI_CONTAINERID: id,
    CNI_IFNAME: ifname,
    CNI_NETNS: '/proc/4242/ns/net',
    ...extra,
  });
  return { store, kernel, claims, service, attr, pool4, pool6, metrics, handles: () => ({ opened, closed }) };
}

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: CniError) => e,
  );

const row = (id: string, ip: string, state: EndpointRow['state'], extra: Partial<EndpointRow> = {}): EndpointRow => ({
  containerId: id,
  ifname: 'eth0',
  ipv4: ipv4ToInt(ip),
  ipv6: null,
  hostVeth: hostVethName(id, 'eth0'),
  mac: macForIpv4(ipv4ToInt(ip)),
  netns: '',
  podName: '',
  podNamespace: '',
  state,
  createdAt: new Date(Date.UTC(2026, 10, 1)).toISOString(),
  origin: 'add',
  ...extra,
});

const markFor = (r: EndpointRow) =>
  formatMark({
    containerId: r.containerId,
    ifname: r.ifname,
    ipv4: intToIpv4(r.ipv4),
    ...(r.ipv6 ? { ipv6: r.ipv6 } : {}),
    mac: r.mac,
    createdAtMs: Date.parse(r.createdAt),
  });

describe('unit: the netplugin service', () => {
  it('ADD allocates, wires, marks the veth ready with its ownership mark and records ready; the namespace handle is closed', async () => {
    const { service, store, kernel, attr, handles } = setup();
    const rsp = await service.addPod(attr('a'));
    expect(rsp).to.include({
      result: 0,
      endpointid: 'a/eth0',
      ipaddress: '10.9.0.2/24',
      ipv6address: 'fd00:9::2/64',
      gateway: '10.9.0.1',
      hostveth: hostVethName('a', 'eth0'),
      defaultroute: true,
    });
    const rec = store.get('a', 'eth0')!;
    expect(rec.state).to.equal('ready');
    expect(kernel.attached[0]).to.include({ ifname: 'eth0', defaultRoute: true, hairpin: true });
    const veth = kernel.veths.get(hostVethName('a', 'eth0'))!;
    expect(veth.group).to.equal(0);
    expect(parseMark(veth.alias)).to.deep.equal({
      containerId: 'a',
      ifname: 'eth0',
      ipv4: '10.9.0.2',
      ipv6: 'fd00:9::2',
      mac: rec.mac,
      createdAtMs: Date.parse(rec.createdAt),
    });
    expect(handles()).to.deep.equal({ opened: 1, closed: 1 });
  });

  it('the default route follows configuration, whatever the order: eth0 by default, another interface only when asked', async () => {
    const { service, kernel, attr } = setup();
    // net1 first: it still gets none, and eth0 after it still gets them
    expect((await service.addPod(attr('a', 'net1'))).defaultroute).to.equal(false);
    expect((await service.addPod(attr('a'))).defaultroute).to.equal(true);
    expect((await service.addPod(attr('b', 'eth1', { CONTIV_DEFAULT_ROUTE: true }))).defaultroute).to.equal(true);
    expect((await service.addPod(attr('c', 'eth0', { CONTIV_DEFAULT_ROUTE: false }))).defaultroute).to.equal(false);
    expect(kernel.attached.map((p) => [p.ifname, p.defaultRoute])).to.deep.equal([
      ['net1', false],
      ['eth0', true],
      ['eth1', true],
      ['eth0', false],
    ]);
  });

  it('hairpin is on unless the configuration turns it off', async () => {
    const { service, kernel, attr } = setup();
    await service.addPod(attr('on'));
    await service.addPod(attr('off', 'eth0', { CONTIV_HAIRPIN: false }));
    expect(kernel.attached.map((p) => p.hairpin)).to.deep.equal([true, false]);
  });

  it('a second ADD of the same attachment is refused and changes nothing', async () => {
    const { service, store, kernel, attr } = setup();
    await service.addPod(attr('a'));
    const before = store.all().map((r) => ({ ...r }));
    const err = await failureOf(service.addPod(attr('a')));
    expect(err?.code).to.equal(PluginErrorCode.AlreadyAttached);
    expect(store.all()).to.deep.equal(before);
    expect(kernel.veths.size).to.equal(1);
  });

  it('an attach that fails leaves no record, frees the address, and closes the handle', async () => {
    const { service, store, kernel, attr, handles, pool4 } = setup();
    kernel.failAttach = new CniError(ErrorCode.InvalidEnv, 'eth0 exists');
    const err = await failureOf(service.addPod(attr('a')));
    expect(err?.message).to.equal('eth0 exists');
    expect(store.all()).to.deep.equal([]);
    expect(handles()).to.deep.equal({ opened: 1, closed: 1 });
    expect(pool4.inUse).to.equal(0);
    kernel.failAttach = undefined;
    expect((await service.addPod(attr('b'))).result).to.equal(0);
  });

  it('a full state dir refuses an ADD before anything is made: no namespace opened, no veth, no record', async () => {
    const { service, store, kernel, attr, handles, pool4 } = setup();
    store.full = true;
    const err = await failureOf(service.addPod(attr('a')));
    expect(err).to.be.instanceOf(StoreError);
    expect(err?.message).to.equal('the state dir /x is full');
    expect(handles().opened).to.equal(0);
    expect(kernel.veths.size).to.equal(0);
    expect(pool4.inUse).to.equal(0);
  });

  it('a ready commit the disk refuses undoes the whole ADD and answers the store error, not a rollback error', async () => {
    const { service, store, kernel, attr, pool4 } = setup();
    store.failReady = true;
    const err = await failureOf(service.addPod(attr('a')));
    expect(err?.message).to.equal('the state dir /x is full');
    expect(kernel.veths.size).to.equal(0);
    expect(store.all()).to.deep.equal([]);
    expect(pool4.inUse).to.equal(0);
  });

  it('a mark the kernel refuses undoes the whole ADD', async () => {
    const { service, store, kernel, attr } = setup();
    kernel.failMark = new CniError(ErrorCode.Io, 'mark refused');
    expect((await failureOf(service.addPod(attr('a'))))?.message).to.equal('mark refused');
    expect(kernel.veths.size).to.equal(0);
    expect(store.all()).to.deep.equal([]);
  });

  it('when the store also refuses to remove the record of an undone ADD, its addresses stay held until it can; a retry of the ADD says why', async () => {
    const { service, store, kernel, attr, pool4 } = setup();
    store.failReady = true;
    store.failRemove = true;
    expect((await failureOf(service.addPod(attr('a'))))?.message).to.equal('the state dir /x is full');
    expect(kernel.veths.size).to.equal(0);
    expect(pool4.inUse, 'the address is held while its record stays').to.equal(1);
    // the retry is told the real cause, not "already exists"
    expect((await failureOf(service.addPod(attr('a'))))?.message).to.equal('the state dir /x is full');
    store.failReady = false;
    store.failRemove = false;
    service.finishDeferred();
    expect(store.all()).to.deep.equal([]);
    expect(pool4.inUse).to.equal(0);
    expect((await service.addPod(attr('a'))).result).to.equal(0);
  });

  it('an ADD whose caller gave up while it was in the kernel is undone', async () => {
    const { service, store, kernel, attr, metrics } = setup();
    const gone = new AbortController();
    kernel.during = () => gone.abort();
    const err = await failureOf(service.addPod(attr('a'), { signal: gone.signal }));
    expect(err?.code).to.equal(ErrorCode.TryAgainLater);
    expect(err?.message).to.match(/closed its connection/);
    expect(kernel.veths.size).to.equal(0);
    expect(store.all()).to.deep.equal([]);
    expect(metrics.registry.metrics()).to.match(/^contiv_netplugin_abandoned_adds_total 1$/m);
  });

  it('an answer that could not be delivered undoes that attachment only, not a later one', async () => {
    const { service, store, kernel, attr } = setup();
    const first = await service.addPod(attr('a'));
    await service.undoAdd(attr('a'), first);
    expect(store.all()).to.deep.equal([]);
    expect(kernel.veths.size).to.equal(0);
    const second = await service.addPod(attr('a'));
    await service.undoAdd(attr('a'), { ...first, ipaddress: '10.9.0.77/24' });
    expect(store.get('a', 'eth0')?.ipv4).to.equal(ipv4ToInt(second.ipaddress!.split('/')[0]));
  });

  it('DEL frees the record, the veth and the claim; with no record it still deletes the veth by its name; twice is fine', async () => {
    const { service, store, kernel, claims, attr } = setup({ claims: true });
    await service.addPod(attr('a'));
    expect(await service.delPod(attr('a'))).to.deep.equal({ result: 0, endpointid: 'a/eth0' });
    expect(store.all()).to.deep.equal([]);
    expect(kernel.veths.size).to.equal(0);
    expect(claims!.releasedLater).to.deep.equal(['10.9.0.2']);
    kernel.veths.set(hostVethName('orphan', 'eth0'), { group: 0 });
    await service.delPod({ CNI_CONTAINERID: 'orphan', CNI_IFNAME: 'eth0' });
    expect(kernel.veths.size).to.equal(0);
    await service.delPod(attr('a'));
  });

  it('a DEL on a full state dir changes nothing; after a record removal refused mid-way the address stays held and the DEL says so', async () => {
    const { service, store, kernel, attr, pool4 } = setup();
    await service.addPod(attr('a'));
    store.full = true;
    expect((await failureOf(service.delPod(attr('a'))))?.message).to.equal('the state dir /x is full');
    expect(kernel.veths.size, 'the pod keeps its network').to.equal(1);
    expect(store.get('a', 'eth0')?.state).to.equal('ready');
    store.full = false;
    store.failRemove = true;
    const err = await failureOf(service.delPod(attr('a')));
    expect(err?.code).to.equal(ErrorCode.Io);
    expect(err?.message).to.match(/stay held/);
    expect(kernel.veths.size).to.equal(0);
    expect(pool4.inUse).to.equal(1);
    store.failRemove = false;
    expect(await service.delPod(attr('a'))).to.deep.equal({ result: 0, endpointid: 'a/eth0' });
    expect(store.all()).to.deep.equal([]);
    expect(pool4.inUse).to.equal(0);
  });

  it('a queued DEL removes an attachment made before it was queued, never one made after (by record, or by mark alone)', async () => {
    const { service, store, kernel, attr } = setup();
    await service.addPod(attr('old'));
    const queuedAt = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    await service.addPod(attr('new'));
    await service.delPod(attr('old'), { queuedAt });
    await service.delPod(attr('new'), { queuedAt });
    expect(store.all().map((r) => r.containerId)).to.deep.equal(['new']);
    // a veth whose record the store lost is judged by its mark
    store.rows.clear();
    await service.delPod(attr('new'), { queuedAt });
    expect(kernel.veths.has(hostVethName('new', 'eth0'))).to.equal(true);
  });

  describe('static addresses and MACs', () => {
    it('honours a requested IPv4, IPv6 and MAC', async () => {
      const { service, kernel, attr, store } = setup();
      const rsp = await service.addPod(attr('s', 'eth0', { CONTIV_IPS: ['10.9.0.50/24', 'fd00:9::50'], CONTIV_MAC: '02:00:00:AA:BB:CC' }));
      expect(rsp).to.include({ ipaddress: '10.9.0.50/24', ipv6address: 'fd00:9::50/64', mac: '02:00:00:aa:bb:cc' });
      expect(kernel.attached[0].mac).to.equal('02:00:00:aa:bb:cc');
      // the pool's cursor is not moved by a requested address
      expect(store.meta('cursor4')).to.equal(undefined);
      expect((await service.addPod(attr('t'))).ipaddress).to.equal('10.9.0.2/24');
    });

    it('refuses, naming the address and why, with nothing allocated: outside the pool, the gateway, a wrong prefix, two of a family, a bad MAC', async () => {
      const { service, store, kernel, attr, pool4 } = setup();
      for (const [extra, re] of [
        [{ CONTIV_IPS: ['10.8.0.5'] }, /requested IP 10\.8\.0\.5: not an assignable address of this node's pool 10\.9\.0\.0\/24/],
        [{ CONTIV_IPS: ['10.9.0.1'] }, /10\.9\.0\.1: not an assignable address/],
        [{ CONTIV_IPS: ['10.9.0.255'] }, /10\.9\.0\.255: not an assignable address/],
        [{ CONTIV_IPS: ['10.9.0.5/16'] }, /the pool 10\.9\.0\.0\/24 has prefix \/24/],
        [{ CONTIV_IPS: ['10.9.0.5', '10.9.0.6'] }, /more than one IPv4/],
        [{ CONTIV_IPS: ['not-an-ip'] }, /not an IP address/],
        [{ CONTIV_MAC: '01:00:5e:00:00:01' }, /multicast/],
        [{ CONTIV_MAC: 'zz' }, /not a MAC address/],
      ] as const) {
        const err = await failureOf(service.addPod(attr('s', 'eth0', extra as Partial<PodAttr>)));
        expect(err?.code, JSON.stringify(extra)).to.equal(ErrorCode.InvalidConfig);
        expect(err?.message).to.match(re);
      }
      expect(store.all()).to.deep.equal([]);
      expect(kernel.veths.size).to.equal(0);
      expect(pool4.inUse).to.equal(0);
    });

    it('an address or MAC in use is code 103 naming its holder; of two concurrent requests for one address exactly one wins', async () => {
      const { service, store, attr } = setup();
      await service.addPod(attr('holder'));
      const ip = await failureOf(service.addPod(attr('x', 'eth0', { CONTIV_IPS: ['10.9.0.2'] })));
      expect(ip?.code).to.equal(PluginErrorCode.AddressInUse);
      expect(ip?.message).to.equal('requested IP 10.9.0.2 is in use by holder/eth0');
      const mac = await failureOf(service.addPod(attr('x', 'eth0', { CONTIV_MAC: macForIpv4(ipv4ToInt('10.9.0.2')) })));
      expect(mac?.code).to.equal(PluginErrorCode.AddressInUse);
      const race = await Promise.allSettled(['r1', 'r2', 'r3'].map((id) => service.addPod(attr(id, 'eth0', { CONTIV_IPS: ['10.9.0.99'] }))));
      expect(race.filter((r) => r.status === 'fulfilled')).to.have.length(1);
      expect(race.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as CniError).code)).to.deep.equal([103, 103]);
      expect(store.all().filter((r) => r.ipv4 === ipv4ToInt('10.9.0.99'))).to.have.length(1);
    });

    it('cluster mode: a requested address an earlier attachment holds in etcd is refused (103), not swapped for another', async () => {
      const { service, store, claims, attr } = setup({ claims: true });
      claims!.held.add('10.9.0.40');
      expect((await failureOf(service.addPod(attr('s', 'eth0', { CONTIV_IPS: ['10.9.0.40'] }))))?.code).to.equal(PluginErrorCode.AddressInUse);
      expect(store.all()).to.deep.equal([]);
    });
  });

  it('cluster mode: an address held in etcd by an earlier attachment is skipped (and stays used); the veth made meanwhile is undone', async () => {
    const { service, store, kernel, claims, attr } = setup({ claims: true });
    claims!.held.add('10.9.0.2');
    claims!.held.add('10.9.0.3');
    expect((await service.addPod(attr('a'))).ipaddress).to.equal('10.9.0.4/24');
    expect(kernel.veths.size).to.equal(1);
    expect(store.all().map((r) => intToIpv4(r.ipv4))).to.deep.equal(['10.9.0.4']);
    // the held addresses are not handed out again, even after the pool wraps
    expect((await service.addPod(attr('b'))).ipaddress).to.equal('10.9.0.5/24');
  });

  it('cluster mode: etcd unreachable is code 11 with nothing left: no veth, no record, and the claim released in case it landed', async () => {
    const { service, store, kernel, claims, attr, pool4 } = setup({ claims: true });
    claims!.unreachable = true;
    const err = await failureOf(service.addPod(attr('a')));
    expect(err?.code).to.equal(ErrorCode.TryAgainLater);
    expect(kernel.veths.size).to.equal(0);
    expect(store.all()).to.deep.equal([]);
    expect(claims!.releasedLater).to.deep.equal(['10.9.0.2']);
    expect(pool4.inUse).to.equal(0);
    claims!.unreachable = false;
    expect((await service.addPod(attr('a'))).result).to.equal(0);
  });

  it('GC frees every attachment not listed and keeps the listed ones', async () => {
    const { service, store, attr } = setup();
    for (const id of ['keep', 'drop1', 'drop2']) await service.addPod(attr(id));
    const rsp = await service.gc({ validAttachments: [{ containerID: 'keep', ifname: 'eth0' }] });
    expect(rsp.freed).to.deep.equal([
      { containerID: 'drop1', ifname: 'eth0' },
      { containerID: 'drop2', ifname: 'eth0' },
    ]);
    expect(store.all().map((r) => r.containerId)).to.deep.equal(['keep']);
  });

  it('CHECK reports what the namespace holds for a ready attachment and refuses an unknown one (code 3)', async () => {
    const { service, attr } = setup();
    await service.addPod(attr('a'));
    expect((await service.checkPod(attr('a'))).observed).to.deep.equal(['10.9.0.2/24']);
    expect((await failureOf(service.checkPod(attr('nobody'))))?.code).to.equal(ErrorCode.ContainerUnknown);
  });

  it('an exhausted subnet is code 102', async () => {
    const { service, attr } = setup({ subnet: '10.9.0.0/30' });
    await service.addPod(attr('only'));
    expect((await failureOf(service.addPod(attr('one-more'))))?.code).to.equal(PluginErrorCode.PoolExhausted);
  });

  describe('start-up: the kernel compared with the store', () => {
    it('keeps live ones, undoes unanswered ADDs, repairs, marks, adopts what the store lost, and leaves what is not ours', async () => {
      const { service, store, kernel, pool4, metrics } = setup();
      const put = (r: EndpointRow, veth?: { alias?: string; group?: number }) => {
        store.insert(r, {});
        if (veth) kernel.veths.set(r.hostVeth, { group: 0, ...veth });
      };
      const live = row('live', '10.9.0.7', 'ready');
      put(live, { alias: markFor(live) });
      put(row('interrupted', '10.9.0.8', 'pending'), { group: GROUPS.pending });
      put(row('stale', '10.9.0.9', 'ready'), undefined);
      // its ready commit was lost, but the mark says its runtime was answered
      const repaired = row('repaired', '10.9.0.10', 'pending');
      put(repaired, { alias: markFor(repaired) });
      // written by a release without marks
      put(row('unmarked', '10.9.0.11', 'ready'), {});
      // the ready commit landed, the mark did not: never answered
      put(row('half', '10.9.0.12', 'ready'), { group: GROUPS.pending });
      store.metaValues.set('cursor4', String(ipv4ToInt('10.9.0.20')));
      // the store lost these two; one was answered (marked), the other never was (pending group)
      const lost = row('lost', '10.9.0.30', 'ready', { ipv6: 'fd00:9::30', mac: '02:aa:bb:cc:dd:ee' });
      kernel.veths.set(lost.hostVeth, { alias: markFor(lost), group: 0 });
      kernel.veths.set(hostVethName('never', 'eth0'), { group: GROUPS.pending });
      // an interrupted DEL, a look-alike made by hand, and a mark on a veth of another name
      kernel.veths.set(hostVethName('deleting', 'eth0'), { alias: markFor(row('deleting', '10.9.0.40', 'ready')), group: GROUPS.deleting });
      kernel.veths.set('ctv0123456789a', { group: 0 });
      kernel.veths.set('ctvforgedalias', { alias: markFor(row('someone', '10.9.0.41', 'ready')), group: 0 });

      const r = await service.reconcile();
      expect(r).to.deep.equal({
        rolledBack: ['interrupted/eth0', 'half/eth0', hostVethName('never', 'eth0')],
        adopted: ['lost/eth0'],
        repaired: ['repaired/eth0'],
        staleRecords: ['stale/eth0'],
        foreign: ['ctv0123456789a', 'ctvforgedalias'],
        unadoptable: [],
      });
      expect([...kernel.veths.keys()].sort()).to.deep.equal(
        [live.hostVeth, repaired.hostVeth, hostVethName('unmarked', 'eth0'), lost.hostVeth, 'ctv0123456789a', 'ctvforgedalias'].sort(),
      );
      expect(parseMark(kernel.veths.get(hostVethName('unmarked', 'eth0'))?.alias)?.ipv4).to.equal('10.9.0.11');
      expect(store.get('repaired', 'eth0')?.state).to.equal('ready');
      expect(store.get('lost', 'eth0')).to.deep.include({
        ipv6: 'fd00:9::30',
        mac: '02:aa:bb:cc:dd:ee',
        state: 'ready',
        origin: 'adopted',
        createdAt: lost.createdAt,
      });
      expect(
        store
          .all()
          .map((x) => x.containerId)
          .sort(),
      ).to.deep.equal(['live', 'lost', 'repaired', 'stale', 'unmarked']);
      // every address a live pod or a kept record holds stays out of the pool
      expect(pool4.inUse).to.equal(5);
      expect(pool4.next()).to.equal(ipv4ToInt('10.9.0.21'));
      expect(metrics.registry.metrics()).to.match(/^contiv_netplugin_adopted_attachments_total 1$/m);
    });

    it("a live veth's address held by a stale record: the stale record goes, the live one is adopted; held by a live record: both left", async () => {
      const { service, store, kernel } = setup();
      store.insert(row('stale', '10.9.0.7', 'ready'), {});
      const owner = row('owner', '10.9.0.7', 'ready', { createdAt: new Date().toISOString() });
      kernel.veths.set(owner.hostVeth, { alias: markFor(owner), group: 0 });
      expect((await service.reconcile()).adopted).to.deep.equal(['owner/eth0']);
      expect(store.all().map((x) => x.containerId)).to.deep.equal(['owner']);

      const other = setup();
      const a = row('a', '10.9.0.8', 'ready');
      other.store.insert(a, {});
      other.kernel.veths.set(a.hostVeth, { alias: markFor(a), group: 0 });
      const twin = row('twin', '10.9.0.8', 'ready');
      other.kernel.veths.set(twin.hostVeth, { alias: markFor(twin), group: 0 });
      const r = await other.service.reconcile();
      expect(r.unadoptable).to.deep.equal(['twin/eth0']);
      expect(other.kernel.veths.size).to.equal(2);
    });

    it('cluster mode: an adopted record takes its pod fields from etcd; one whose address another attachment holds there is left alone', async () => {
      const { service, store, kernel, claims } = setup({ claims: true });
      const lost = row('lost', '10.9.0.30', 'ready');
      kernel.veths.set(lost.hostVeth, { alias: markFor(lost), group: 0 });
      claims!.records.set('10.9.0.30', { containerId: 'lost', netns: '/var/run/netns/cni-1', podName: 'p', podNamespace: 'ns', createdAt: lost.createdAt });
      const taken = row('taken', '10.9.0.31', 'ready');
      kernel.veths.set(taken.hostVeth, { alias: markFor(taken), group: 0 });
      claims!.records.set('10.9.0.31', { containerId: 'someone-else', netns: '', podName: '', podNamespace: '', createdAt: '' });
      const r = await service.reconcile();
      expect(r.adopted).to.deep.equal(['lost/eth0']);
      expect(r.unadoptable).to.deep.equal(['taken/eth0']);
      expect(store.get('lost', 'eth0')).to.deep.include({ netns: '/var/run/netns/cni-1', podName: 'p', podNamespace: 'ns' });
    });

    it('refuses a record or a live attachment outside --subnet', async () => {
      const a = setup();
      a.store.insert(row('elsewhere', '10.77.0.5', 'ready'), {});
      expect((await failureOf(a.service.reconcile()))?.message).to.match(/outside --subnet/);
      const b = setup();
      const live = row('elsewhere', '10.77.0.5', 'ready');
      b.kernel.veths.set(live.hostVeth, { alias: markFor(live), group: 0 });
      expect((await failureOf(b.service.reconcile()))?.message).to.match(/outside --subnet/);
    });
  });
});
