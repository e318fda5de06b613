// NetpluginService without root: its store, kernel, IP claims and namespace opener are in-memory fakes, so
// rollback, the claim-skip loop, GC and reconcile are exercised on their own, every branch.
import { expect } from 'chai';
import type { PodAttr } from '../../src/api/wire';
import { CniError, ErrorCode, PluginErrorCode } from '../../src/errors';
import { intToIpv4, ipv4ToInt } from '../../src/ip/ip';
import { hostVethName } from '../../src/linux/ifname';
import type { PodLink } from '../../src/netplugin/datapath';
import { Pool4, Pool6 } from '../../src/netplugin/ipam';
import { Metrics } from '../../src/netplugin/metrics';
import { type AddressClaims, type AttachmentStore, type Kernel, NetpluginService } from '../../src/netplugin/service';
import type { EndpointRow } from '../../src/netplugin/store';

/** The embedded store's contract in memory, UNIQUE constraints included. */
class FakeStore implements AttachmentStore {
  readonly rows = new Map<string, EndpointRow>();
  readonly metaValues = new Map<string, string>();
  get = (c: string, i: string) => this.rows.get(`${c}/${i}`);
  hasContainer = (c: string) => [...this.rows.values()].some((r) => r.containerId === c);
  all = () => [...this.rows.values()];
  insert(row: EndpointRow, cursor: Record<string, string>): void {
    for (const r of this.rows.values()) {
      if (r.ipv4 === row.ipv4 || (row.ipv6 && r.ipv6 === row.ipv6) || r.hostVeth === row.hostVeth) throw new Error('UNIQUE constraint failed');
    }
    if (this.rows.has(`${row.containerId}/${row.ifname}`)) throw new Error('UNIQUE constraint failed: primary key');
    this.rows.set(`${row.containerId}/${row.ifname}`, { ...row });
    for (const [k, v] of Object.entries(cursor)) this.metaValues.set(k, v);
  }
  setState(c: string, i: string, state: EndpointRow['state']): void {
    const r = this.rows.get(`${c}/${i}`);
    if (r) r.state = state;
  }
  remove = (c: string, i: string) => this.rows.delete(`${c}/${i}`);
  meta = (k: string) => this.metaValues.get(k);
}

/** The datapath's contract: veths by name; an attach can be made to fail. */
class FakeKernel implements Kernel {
  readonly veths = new Set<string>();
  readonly attached: PodLink[] = [];
  failAttach?: Error;
  async attach(p: PodLink): Promise<void> {
    if (this.failAttach) throw this.failAttach;
    this.veths.add(p.hostVeth);
    this.attached.push(p);
  }
  async detach(hostVeth: string): Promise<boolean> {
    return this.veths.delete(hostVeth);
  }
  async observe(): Promise<string[]> {
    return this.attached.map((p) => `${p.ipv4.address}/${p.ipv4.prefix}`);
  }
  async hostVeths(): Promise<string[]> {
    return [...this.veths];
  }
}

/** Cluster mode's claims: some IPs held by earlier attachments, or etcd unreachable. */
class FakeClaims implements AddressClaims {
  readonly held = new Set<string>();
  readonly claimed = new Set<string>();
  readonly releasedLater: string[] = [];
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
}

const silent = { info: () => undefined, warn: () => undefined };

function setup(opts: { claims?: boolean; subnet?: string } = {}) {
  const store = new FakeStore();
  const kernel = new FakeKernel();
  const claims = opts.claims ? new FakeClaims() : undefined;
  let opened = 0;
  let closed = 0;
  const resolvePod = () => {
    opened++;
    return { pid: 4242, ns: { path: '/proc/4242/ns/net', fd: -1, dev: 1, ino: 2, close: () => void closed++ } };
  };
  const pool4 = new Pool4(opts.subnet ?? '10.9.0.0/24');
  const pool6 = new Pool6('fd00:9::/64');
  const service = new NetpluginService({ store, kernel, pool4, pool6, claims, resolvePod, log: silent, metrics: new Metrics() });
  const attr = (id: string, ifname = 'eth0'): PodAttr => ({ CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: '/proc/4242/ns/net' });
  return { store, kernel, claims, service, attr, pool4, handles: () => ({ opened, closed }) };
}

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: CniError) => e,
  );

describe('unit: the netplugin service', () => {
  it('ADD allocates, wires and records ready; the namespace handle is closed', async () => {
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
    expect(store.get('a', 'eth0')?.state).to.equal('ready');
    expect(kernel.attached[0]).to.include({ pid: 4242, ifname: 'eth0', defaultRoute: true });
    expect(handles()).to.deep.equal({ opened: 1, closed: 1 });
  });

  it('a second interface of a container gets no default route; a second ADD of the same one is refused and changes nothing', async () => {
    const { service, store, kernel, attr } = setup();
    await service.addPod(attr('a'));
    expect((await service.addPod(attr('a', 'net1'))).defaultroute).to.equal(false);
    const before = store.all().map((r) => ({ ...r }));
    const err = await failureOf(service.addPod(attr('a')));
    expect(err?.code).to.equal(PluginErrorCode.AlreadyAttached);
    expect(store.all()).to.deep.equal(before);
    expect(kernel.veths.size).to.equal(2);
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

  it('DEL frees the record, the veth and the claim; with no record it still deletes the veth by its name; twice is fine', async () => {
    const { service, store, kernel, claims, attr } = setup({ claims: true });
    await service.addPod(attr('a'));
    expect(await service.delPod(attr('a'))).to.deep.equal({ result: 0, endpointid: 'a/eth0' });
    expect(store.all()).to.deep.equal([]);
    expect(kernel.veths.size).to.equal(0);
    expect(claims!.releasedLater).to.deep.equal(['10.9.0.2']);
    kernel.veths.add(hostVethName('orphan', 'eth0'));
    await service.delPod({ CNI_CONTAINERID: 'orphan', CNI_IFNAME: 'eth0' });
    expect(kernel.veths.size).to.equal(0);
    await service.delPod(attr('a'));
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

  it('reconcile rolls back pending records, removes orphan veths, keeps stale records, resumes the cursor, refuses a foreign subnet', async () => {
    const { service, store, kernel, pool4 } = setup();
    const row = (id: string, ip: string, state: EndpointRow['state']): EndpointRow => ({
      containerId: id,
      ifname: 'eth0',
      ipv4: ipv4ToInt(ip),
      ipv6: null,
      hostVeth: hostVethName(id, 'eth0'),
      mac: '',
      netns: '',
      podName: '',
      podNamespace: '',
      state,
      createdAt: id,
    });
    store.insert(row('live', '10.9.0.7', 'ready'), {});
    store.insert(row('interrupted', '10.9.0.8', 'pending'), {});
    store.insert(row('stale', '10.9.0.9', 'ready'), { cursor4: String(ipv4ToInt('10.9.0.20')) });
    kernel.veths.add(hostVethName('live', 'eth0'));
    kernel.veths.add(hostVethName('interrupted', 'eth0'));
    kernel.veths.add(hostVethName('orphan', 'eth0'));
    const r = await service.reconcile();
    expect(r).to.deep.equal({ rolledBack: ['interrupted/eth0'], orphanVeths: [hostVethName('orphan', 'eth0')], staleRecords: ['stale/eth0'] });
    expect([...kernel.veths]).to.deep.equal([hostVethName('live', 'eth0')]);
    expect(
      store
        .all()
        .map((x) => x.containerId)
        .sort(),
    ).to.deep.equal(['live', 'stale']);
    expect(pool4.inUse).to.equal(2);
    expect(pool4.next()).to.equal(ipv4ToInt('10.9.0.21'));

    const other = setup();
    other.store.insert(row('elsewhere', '10.77.0.5', 'ready'), {});
    expect((await failureOf(other.service.reconcile()))?.message).to.match(/outside --subnet/);
  });
});
