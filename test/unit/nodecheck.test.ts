import { expect } from 'chai';
import type { Endpoint, Health } from '../../src/api/wire';
import { analyze, fixRequest, type Leak, type NamespaceSnapshot, type PortSnapshot } from '../../src/contivctl/leaks';
import { inCidr } from '../../src/ip/ip';
import { hostVethName } from '../../src/linux/ifname';
import { formatMark } from '../../src/linux/mark';
import { netnsMounts } from '../../src/netns/inventory';

const health: Health = {
  status: 'ok',
  pid: 10,
  bridge: 'contivbr0',
  subnet: '10.1.0.0/24',
  gateway: '10.1.0.1',
  mtu: 1500,
  stateDir: '/var/lib/contiv',
  store: 'embedded',
};
const ns = (inode: number, o: Partial<NamespaceSnapshot> = {}): NamespaceSnapshot => ({
  inode,
  tids: [],
  mounts: [],
  ref: `/proc/1/ns/net`,
  isHost: false,
  addresses: [],
  ...o,
});
const mount = (p: string) => ({ mountPoint: p, path: p, local: true });
const endpoint = (o: Partial<Endpoint>): Endpoint => ({
  containerId: 'c1',
  ifname: 'eth0',
  ipaddress: '10.1.0.2/24',
  hostVeth: 'ctv0123456789a',
  mac: '0a:58:0a:01:00:02',
  netns: '/var/run/netns/cni-1',
  podName: 'p',
  podNamespace: 'default',
  state: 'ready',
  createdAt: '',
  ...o,
});

describe('unit: netns mounts from mountinfo', () => {
  it('finds nsfs net mounts, unescapes their paths, ignores other nsfs and filesystems', () => {
    const text = [
      '610 28 0:4 net:[4026532829] /run/netns/cni-1 rw shared:5 - nsfs nsfs rw',
      '611 28 0:4 net:[4026532830] /tmp/with\\040space rw - nsfs nsfs rw',
      '612 28 0:4 mnt:[4026532831] /tmp/mntns rw - nsfs nsfs rw',
      '25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    ].join('\n');
    expect(netnsMounts(text)).to.deep.equal([
      [4026532829, '/run/netns/cni-1'],
      [4026532830, '/tmp/with space'],
    ]);
  });
});

describe('unit: inCidr', () => {
  it('matches by family and range', () => {
    expect(inCidr('10.1.0.255', '10.1.0.0/24')).to.equal(true);
    expect(inCidr('10.1.1.0', '10.1.0.0/24')).to.equal(false);
    expect(inCidr('fd00::5', 'fd00::/64')).to.equal(true);
    expect(inCidr('10.1.0.5', 'fd00::/64')).to.equal(false);
  });
});

describe('unit: leak analysis', () => {
  const markOf = (containerId: string, ip: string) =>
    formatMark({ containerId, ifname: 'eth0', ipv4: ip, mac: '0a:58:0a:01:00:09', createdAtMs: Date.UTC(2026, 10, 1) });
  const base = {
    takenAt: Date.UTC(2026, 10, 2),
    allocations: { health, endpoints: [] as Endpoint[] },
    bridge: 'contivbr0',
    bridgePorts: [] as PortSnapshot[],
    recordedInodes: {} as Record<string, number | undefined>,
  };
  const withEndpoints = (endpoints: Endpoint[]) => ({ allocations: { health, endpoints } });
  const port = (name: string, alias?: string): PortSnapshot => ({ name, ...(alias ? { alias } : {}) });

  it('a dead namespace holding an address of ours is reported, never fixable (no mount is ours); one holding nothing of ours is no finding', () => {
    const leaks = analyze({
      ...base,
      namespaces: [
        ns(1, { isHost: true, tids: [1], addresses: [{ ifname: 'contivbr0', address: '10.1.0.1', prefixlen: 24 }] }),
        ns(2, { mounts: [mount('/tmp/leak')], addresses: [{ ifname: 'eth0', address: '10.1.0.7', prefixlen: 24 }] }),
        ns(3, { mounts: [mount('/run/netns/admin')], addresses: [{ ifname: 'eth0', address: '192.0.2.1', prefixlen: 24 }] }),
        ns(4, { mounts: [mount('/run/netns/empty')] }),
      ],
    });
    expect(leaks.map((l) => [l.kind, 'inode' in l ? l.inode : undefined, l.fixable])).to.deep.equal([['dead-netns', 2, false]]);
    expect(leaks[0].detail).to.match(/umount it/);
  });

  it('a namespace an allocation names (containerd between ADD and the pause start) is no finding', () => {
    const leaks = analyze({
      ...base,
      ...withEndpoints([endpoint({})]),
      bridgePorts: [port('ctv0123456789a', markOf('c1', '10.1.0.2'))],
      recordedInodes: { 'c1/eth0': 2 },
      namespaces: [ns(2, { mounts: [mount('/var/run/netns/cni-1')], addresses: [{ ifname: 'eth0', address: '10.1.0.2', prefixlen: 24 }] })],
    });
    expect(leaks).to.deep.equal([]);
  });

  it('reports an IP held by two namespaces with their holders, saying which one a record names', () => {
    const a = { ifname: 'eth0', address: '10.1.0.2', prefixlen: 24 };
    const leaks = analyze({
      ...base,
      recordedInodes: { 'c1/eth0': 2 },
      namespaces: [ns(2, { tids: [50], addresses: [a] }), ns(3, { tids: [60], addresses: [a] })],
    });
    expect(leaks).to.have.length(1);
    expect(leaks[0]).to.deep.include({ kind: 'duplicate-ip', ip: '10.1.0.2', fixable: false });
    expect((leaks[0] as Extract<Leak, { kind: 'duplicate-ip' }>).namespaces.map((n) => n.recorded)).to.deep.equal([true, false]);
  });

  it('a ready record whose host veth is gone is a stale allocation (fixable, with its createdAt); a pending one or one with its veth is not', () => {
    const leaks = analyze({
      ...base,
      namespaces: [],
      bridgePorts: [port('ctv00000000003', markOf('live-veth', '10.1.0.3'))],
      ...withEndpoints([
        endpoint({ containerId: 'gone', createdAt: '2026-11-01T00:00:00.000Z' }),
        endpoint({ containerId: 'adding', state: 'pending', hostVeth: 'ctv00000000002' }),
        endpoint({ containerId: 'live-veth', hostVeth: 'ctv00000000003' }),
      ]),
    });
    expect(leaks.map((l) => [l.kind, 'containerId' in l ? l.containerId : '', l.fixable])).to.deep.equal([['stale-allocation', 'gone', true]]);
    expect(fixRequest(leaks[0])).to.deep.equal({ kind: 'stale-allocation', containerId: 'gone', ifname: 'eth0', createdAt: '2026-11-01T00:00:00.000Z' });
  });

  it('a port with our mark and no record is a live pod to adopt; one without our mark is foreign, whatever its name', () => {
    const lost = hostVethName('lost', 'eth0');
    const leaks = analyze({
      ...base,
      namespaces: [],
      bridgePorts: [
        port('ctv0123456789a', markOf('c1', '10.1.0.2')),
        port(lost, markOf('lost', '10.1.0.9')),
        port('ctv00000000001'),
        port('eth1'),
        // a mark copied onto a link of another name is not ours either
        port('ctv00000000004', markOf('lost', '10.1.0.9')),
      ],
      ...withEndpoints([endpoint({})]),
      recordedInodes: { 'c1/eth0': 9 },
    });
    expect(leaks.map((l) => [l.kind, 'hostVeth' in l ? l.hostVeth : '', l.fixable])).to.deep.equal([
      ['unrecorded-veth', lost, true],
      ['foreign-veth', 'ctv00000000001', false],
      ['foreign-veth', 'eth1', false],
      ['foreign-veth', 'ctv00000000004', false],
    ]);
    expect(fixRequest(leaks[0])).to.deep.equal({ kind: 'unrecorded-veth', hostVeth: lost, alias: markOf('lost', '10.1.0.9') });
    expect(fixRequest(leaks[1])).to.equal(undefined);
  });

  it('with the netplugin down: dead namespaces with addresses, duplicate IPs and our bridge ports are still reported, and none is fixable', () => {
    const a = { ifname: 'eth0', address: '10.1.0.7', prefixlen: 24 };
    const leaks = analyze({
      takenAt: 0,
      bridge: 'contivbr0',
      bridgePorts: [port('ctv0123456789a'), port('eth1')],
      recordedInodes: {},
      namespaces: [ns(2, { mounts: [mount('/tmp/leak')], addresses: [a] }), ns(3, { tids: [70], addresses: [a] }), ns(4, { mounts: [mount('/tmp/empty')] })],
    });
    expect(leaks.map((l) => [l.kind, l.fixable])).to.deep.equal([
      ['duplicate-ip', false],
      ['dead-netns', false],
      ['unchecked-veth', false],
      ['unchecked-veth', false],
    ]);
    expect(leaks[1].detail).to.include('the netplugin is down: its allocations could not be checked');
  });
});
