import { expect } from 'chai';
import type { Endpoint, Health } from '../../src/api/wire';
import { analyze, type NamespaceSnapshot } from '../../src/contivctl/leaks';
import { inCidr } from '../../src/ip/ip';
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
  const base = {
    allocations: { health, endpoints: [] as Endpoint[] },
    bridge: 'contivbr0',
    bridgePorts: [] as string[],
    recordedInodes: {} as Record<string, number | undefined>,
  };
  const withEndpoints = (endpoints: Endpoint[]) => ({ allocations: { health, endpoints } });

  it('a dead bind-mounted namespace with our IP is fixable; one without is only reported; the host never is', () => {
    const leaks = analyze({
      ...base,
      namespaces: [
        ns(1, { isHost: true, tids: [1], addresses: [{ ifname: 'contivbr0', address: '10.1.0.1', prefixlen: 24 }] }),
        ns(2, { mounts: [mount('/tmp/leak')], addresses: [{ ifname: 'eth0', address: '10.1.0.7', prefixlen: 24 }] }),
        ns(3, { mounts: [mount('/run/netns/admin')], addresses: [{ ifname: 'eth0', address: '192.0.2.1', prefixlen: 24 }] }),
      ],
    });
    expect(leaks.map((l) => [l.kind, 'inode' in l ? l.inode : undefined, l.fixable])).to.deep.equal([
      ['orphan-netns', 2, true],
      ['orphan-netns', 3, false],
    ]);
  });

  it('a namespace an allocation still names (containerd between ADD and the pause start) is not fixable', () => {
    const leaks = analyze({
      ...base,
      ...withEndpoints([endpoint({})]),
      bridgePorts: ['ctv0123456789a'],
      recordedInodes: { 'c1/eth0': 2 },
      namespaces: [ns(2, { mounts: [mount('/var/run/netns/cni-1')], addresses: [{ ifname: 'eth0', address: '10.1.0.2', prefixlen: 24 }] })],
    });
    expect(leaks).to.have.length(1);
    expect(leaks[0]).to.include({ kind: 'orphan-netns', fixable: false });
    expect(leaks[0].detail).to.match(/runtime has not sent DEL/);
  });

  it('reports an IP held by two namespaces with their holders', () => {
    const a = { ifname: 'eth0', address: '10.1.0.2', prefixlen: 24 };
    const leaks = analyze({ ...base, namespaces: [ns(2, { tids: [50], addresses: [a] }), ns(3, { tids: [60], addresses: [a] })] });
    expect(leaks).to.have.length(1);
    expect(leaks[0]).to.deep.include({ kind: 'duplicate-ip', ip: '10.1.0.2', fixable: false });
  });

  it('a ready allocation with no namespace and no veth is stale; a pending one or one with its veth is not', () => {
    const leaks = analyze({
      ...base,
      namespaces: [],
      bridgePorts: ['ctv00000000003'],
      recordedInodes: {},
      ...withEndpoints([
        endpoint({ containerId: 'gone' }),
        endpoint({ containerId: 'adding', state: 'pending', hostVeth: 'ctv00000000002' }),
        endpoint({ containerId: 'live-veth', hostVeth: 'ctv00000000003' }),
      ]),
    });
    expect(leaks.map((l) => [l.kind, 'containerId' in l ? l.containerId : ''])).to.deep.equal([['stale-allocation', 'gone']]);
  });

  it('only ctv-named ports of our bridge without an allocation are orphan veths', () => {
    const leaks = analyze({
      ...base,
      namespaces: [],
      bridgePorts: ['ctv0123456789a', 'ctvffffffffffff0', 'eth1', 'ctv00000000001'],
      ...withEndpoints([endpoint({})]),
      recordedInodes: { 'c1/eth0': 9 },
    });
    expect(leaks.map((l) => ('hostVeth' in l ? l.hostVeth : ''))).to.deep.equal(['ctv00000000001']);
  });

  it('with the netplugin down: dead namespaces, duplicate IPs and our veths are still reported, and none is fixable', () => {
    const a = { ifname: 'eth0', address: '10.1.0.7', prefixlen: 24 };
    const leaks = analyze({
      bridge: 'contivbr0',
      bridgePorts: ['ctv0123456789a', 'eth1'],
      recordedInodes: {},
      namespaces: [ns(2, { mounts: [mount('/tmp/leak')], addresses: [a] }), ns(3, { tids: [70], addresses: [a] })],
    });
    expect(leaks.map((l) => [l.kind, l.fixable])).to.deep.equal([
      ['duplicate-ip', false],
      ['orphan-netns', false],
      ['unchecked-veth', false],
    ]);
    expect(leaks[1].detail).to.include('the netplugin is down: its allocations could not be checked');
  });
});
