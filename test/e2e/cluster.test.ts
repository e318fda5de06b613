// Cluster mode on one machine: nodes are network namespaces on an underlay bridge, each running its own
// netplugin against a real etcd (Debian's etcd-server, mutual TLS), pods talking across the VXLAN overlay.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors';
import { inCidr } from '../../src/ip/ip';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { CLUSTER_CIDR, CLUSTER_CIDR6, LEASE_TTL, TestCluster, type TestNode } from '../../testbed/cluster';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, hostLinkNames, inNetns, namedNetns, sh, type TestNetns, waitFor } from '../../testbed/sys';

interface Pod {
  ns: TestNetns;
  ip: string;
  ip6?: string;
}

function podsOf(cluster: TestCluster) {
  const made: TestNetns[] = [];
  const conf = (n: TestNode) => ({ ...n.np.conf, cniVersion: '1.0.0' });
  const add = async (n: TestNode, id: string): Promise<Pod> => {
    const ns = namedNetns();
    made.push(ns);
    const r = await runAdapter(cniEnv('ADD', id, ns.path), conf(n));
    if (r.status !== 0) throw new Error(`ADD ${id} on ${n.name}: ${r.stdout}`);
    const [ip, ip6] = r.json.ips.map((x: { address: string }) => x.address.split('/')[0]);
    return { ns, ip, ip6 };
  };
  return { made, conf, add, cluster };
}

const ping6 = (nsPath: string, ip: string) => {
  try {
    inNetns(nsPath, 'ping', ['-6', '-c', '1', '-W', '2', ip]);
    return true;
  } catch {
    return false;
  }
};
const ping = (nsPath: string, ip: string) => spawnSync('nsenter', [`--net=${nsPath}`, '--', 'ping', '-c', '1', '-W', '2', ip]).status === 0;

describe('e2e: cluster mode, three nodes, dual stack, etcd over mutual TLS', function () {
  this.timeout(300_000);
  const cluster = new TestCluster({ dualStack: true });
  const { made, conf, add } = podsOf(cluster);
  let n1: TestNode;
  let n2: TestNode;
  let n3: TestNode;
  const blockOf = (name: string) => cluster.state().nodes.find((x) => x.name === name)?.block;
  const routesIn = (n: TestNode, family = '-4') => sh('ip', ['-n', n.netns, family, 'route', 'show', 'dev', 'contivvxlan0']);

  before(async () => {
    await cluster.start();
    n1 = await cluster.addNode('node1', 1);
    n2 = await cluster.addNode('node2', 2);
    n3 = await cluster.addNode('node3', 3);
  });
  after(async () => {
    for (const p of made) p.remove();
    await cluster.destroy();
  });

  it("each node registers with its own IPv4 and IPv6 blocks; every node routes the others' blocks over VXLAN", async () => {
    const s = cluster.state();
    expect(s.nodes.map((n) => n.name).sort()).to.deep.equal(['node1', 'node2', 'node3']);
    expect(new Set(s.nodes.map((n) => n.block)).size).to.equal(3);
    expect(new Set(s.nodes.map((n) => n.block6)).size).to.equal(3);
    for (const node of s.nodes) {
      expect(inCidr(node.block.split('/')[0], CLUSTER_CIDR)).to.equal(true);
      expect(node.block6).to.match(/\/64$/);
      expect(inCidr(node.block6!.split('/')[0], CLUSTER_CIDR6)).to.equal(true);
    }
    for (const n of [n1, n2, n3]) {
      const others = s.nodes.filter((x) => x.name !== n.name);
      await waitFor(`${n.name}'s overlay routes`, () => others.every((o) => routesIn(n).includes(o.block) && routesIn(n, '-6').includes(o.block6!)));
      expect(JSON.parse(sh('ip', ['-n', n.netns, '-j', 'link', 'show', 'contivvxlan0']))[0].mtu).to.equal(1450);
    }
  });

  it('a pod on node 1 pings pods on nodes 2 and 3 over IPv4 and IPv6 (MTU 1450 inside pods)', async () => {
    const a = await add(n1, 'ping-a');
    const b = await add(n2, 'ping-b');
    const c = await add(n3, 'ping-c');
    expect(JSON.parse(inNetns(a.ns.path, 'ip', ['-j', 'link', 'show', 'eth0']))[0].mtu).to.equal(1450);
    for (const [from, to] of [
      [a, b],
      [a, c],
      [c, b],
    ] as const) {
      expect(ping(from.ns.path, to.ip), `${from.ip} -> ${to.ip}`).to.equal(true);
      expect(ping6(from.ns.path, to.ip6!), `${from.ip6} -> ${to.ip6}`).to.equal(true);
    }
  });

  it("3 x 50 concurrent ADDs give 150 distinct IPv4 and IPv6 addresses, each in its node's blocks; DELs free them in etcd", async () => {
    const before = cluster.state().ips.length;
    const nss = [n1, n2, n3].flatMap((n) => Array.from({ length: 50 }, (_, i) => ({ n, id: `burst-${n.name}-${i}`, ns: namedNetns() })));
    made.push(...nss.map((x) => x.ns));
    const adds = await Promise.all(nss.map((x) => runAdapter(cniEnv('ADD', x.id, x.ns.path), conf(x.n))));
    expect(adds.filter((r) => r.status !== 0).map((r) => r.stdout)).to.deep.equal([]);
    const ips = adds.map((r) => r.json.ips.map((x: { address: string }) => x.address.split('/')[0]) as string[]);
    expect(new Set(ips.map((x) => x[0])).size).to.equal(150);
    expect(new Set(ips.map((x) => x[1])).size).to.equal(150);
    const s = cluster.state();
    expect(s.ips.length).to.equal(before + 300);
    for (const [i, x] of nss.entries()) {
      const node = s.nodes.find((n) => n.name === x.n.name)!;
      expect(inCidr(ips[i][0], node.block) && inCidr(ips[i][1], node.block6!), `${ips[i]} in ${node.block} and ${node.block6}`).to.equal(true);
    }
    const dels = await Promise.all(nss.map((x) => runAdapter(cniEnv('DEL', x.id, x.ns.path), conf(x.n))));
    expect(dels.filter((r) => r.status !== 0).length).to.equal(0);
    await waitFor('etcd to hold only the earlier IPs', () => cluster.state().ips.length === before);
  });

  it('a netplugin restart (kill -9) keeps its blocks and its pods', async () => {
    const p = await add(n2, 'restart-pod');
    const from = await add(n1, 'restart-probe');
    const block = blockOf('node2');
    await n2.np.stop('SIGKILL');
    await n2.np.start();
    expect(blockOf('node2')).to.equal(block);
    expect((await n2.np.endpoints()).some((e) => e.containerId === 'restart-pod')).to.equal(true);
    expect(ping(from.ns.path, p.ip)).to.equal(true);
    expect(ping6(from.ns.path, p.ip6!)).to.equal(true);
  });

  it('a node frozen past its lease, whose empty block was taken over meanwhile, refuses to allocate in it when it wakes', async () => {
    const frozen = await cluster.addNode('frozen', 6);
    const lostBlock = blockOf('frozen')!;
    let heir: TestNode;
    process.kill(frozen.np.pid!, 'SIGSTOP');
    try {
      await waitFor('the frozen node to leave the registry', () => !cluster.state().nodes.some((n) => n.name === 'frozen'), (LEASE_TTL + 10) * 1000);
      heir = await cluster.addNode('heir', 7);
      expect(blockOf('heir')).to.equal(lostBlock);
    } finally {
      process.kill(frozen.np.pid!, 'SIGCONT');
    }
    await waitFor(
      'the woken node to find its block gone',
      async () => {
        const ns = namedNetns();
        made.push(ns);
        const r = await runAdapter(cniEnv('ADD', `woken-${made.length}`, ns.path), conf(frozen));
        return r.status === 1 && r.json.code === ErrorCode.TryAgainLater && String(r.json.msg).includes(`block ${lostBlock}`);
      },
      20_000,
    );
    // and the heir serves the block alone: its pods are reachable from elsewhere
    const p = await add(heir, 'heir-pod');
    const from = await add(n1, 'heir-probe');
    expect(ping(from.ns.path, p.ip)).to.equal(true);
  });

  it('a dead node leaves at lease expiry with its routes; remove-node refuses it alive, then frees its IPs and blocks', async () => {
    await add(n3, 'orphaned-pod');
    const deadBlock = blockOf('node3')!;
    expect(cluster.contivctlRun(['remove-node', 'node3', '--yes']).stderr).to.include('node node3 is alive');
    await n3.np.stop('SIGKILL');
    await waitFor('node3 to leave the registry', () => !cluster.state().nodes.some((n) => n.name === 'node3'), (LEASE_TTL + 10) * 1000);
    await waitFor("node1 to drop node3's routes", () => !routesIn(n1).includes(deadBlock));
    const n4 = await cluster.addNode('node4', 4);
    expect(blockOf('node4')).to.not.equal(deadBlock);

    const dry = cluster.contivctl(['remove-node', 'node3']);
    expect(dry.dryRun).to.equal(true);
    expect(dry.ips.map((x: { containerId: string }) => x.containerId)).to.include('orphaned-pod');
    expect(dry.blocks.map((x: { block: string }) => x.block)).to.include(deadBlock);
    expect(cluster.state().blocks.some((b) => b.block === deadBlock)).to.equal(true);
    const done = cluster.contivctl(['remove-node', 'node3', '--yes']);
    expect(done.skipped).to.deep.equal([]);
    expect(done.deleted).to.have.length(dry.ips.length + dry.blocks.length);
    const s = cluster.state();
    expect(s.ips.some((x) => x.node === 'node3')).to.equal(false);
    expect(s.blocks.some((b) => b.node === 'node3')).to.equal(false);

    const n5 = await cluster.addNode('node5', 5);
    expect(blockOf('node5')).to.equal(deadBlock);
    const p5 = await add(n5, 'heir5');
    const p4 = await add(n4, 'newcomer');
    const p1 = await add(n1, 'greeter');
    expect(ping(p1.ns.path, p5.ip)).to.equal(true);
    expect(ping(p1.ns.path, p4.ip)).to.equal(true);
  });
});

describe('e2e: cluster mode, nodes started at the same moment', function () {
  this.timeout(300_000);
  const cluster = new TestCluster();
  const ROUNDS = 8;
  before(() => cluster.start());
  after(() => cluster.destroy());

  it(`never share a block (${ROUNDS} rounds of 4 nodes started together)`, async () => {
    const shared: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const nodes = await Promise.all([1, 2, 3, 4].map((i) => cluster.addNode(`r${round}n${i}`, 20 + round * 4 + i)));
      const blocks = cluster
        .state()
        .nodes.filter((n) => n.name.startsWith(`r${round}n`))
        .map((n) => n.block);
      if (blocks.length !== 4 || new Set(blocks).size !== 4) shared.push(`round ${round}: ${blocks.join(' ')}`);
      for (const n of nodes) await cluster.removeNode(n);
      await cluster.client().delete().prefix('/contiv/').exec();
    }
    expect(shared).to.deep.equal([]);
  });
});

describe('e2e: cluster mode, etcd over TLS refuses what it must, quickly and clearly', function () {
  this.timeout(120_000);
  const cluster = new TestCluster();
  before(() => cluster.start());
  after(() => cluster.destroy());

  const start = (etcdFlags: string[]) => {
    const np = new TestNetplugin({
      subnet: '10.255.255.0/24',
      extraArgs: [
        '--store',
        'etcd',
        ...etcdFlags,
        '--node-name',
        'refused',
        '--node-ip',
        '192.168.213.254',
        '--cluster-cidr',
        CLUSTER_CIDR,
        '--vxlan-device',
        'ctvvxrefused',
      ],
    });
    const t0 = Date.now();
    const r = spawnSync(path.join(BIN, 'netplugin'), np.args(), { encoding: 'utf8', timeout: 30_000 });
    void np.destroy();
    return { ...r, ms: Date.now() - t0, bridge: np.bridge };
  };
  const certs = () => cluster.certs!;

  it("a wrong CA: the netplugin exits at once saying etcd's certificate is not trusted", () => {
    const r = start([
      '--etcd-endpoints',
      cluster.endpoints.join(','),
      '--etcd-ca',
      certs().otherCa,
      '--etcd-cert',
      certs().clientCert,
      '--etcd-key',
      certs().clientKey,
    ]);
    expect(r.status).to.equal(1);
    // what to do comes first, and gRPC's advice to trust the system CAs (the wrong way) is gone
    expect(r.stderr.split('\n')[0]).to.equal("netplugin: etcd's certificate is not trusted (check --etcd-ca) or does not name this endpoint");
    expect(r.stderr).to.not.include('use-system-ca');
    expect(r.ms).to.be.below(15_000);
  });

  it('no client certificate: etcd refuses it, and the netplugin says so', () => {
    const r = start(['--etcd-endpoints', cluster.endpoints.join(','), '--etcd-ca', certs().ca]);
    expect(r.status).to.equal(1);
    expect(r.stderr.split('\n')[0]).to.equal("netplugin: etcd refused this client's certificate (check --etcd-cert and --etcd-key)");
    expect(r.ms).to.be.below(15_000);
  });

  it('plain http:// is refused without --etcd-insecure, before anything on the node changes', () => {
    const r = start(['--etcd-endpoints', cluster.endpoints.map((e) => e.replace('https', 'http')).join(',')]);
    // a usage error: the flags contradict each other, and nothing is tried
    expect(r.status).to.equal(2);
    expect(r.stderr).to.include('etcd over plain HTTP is refused');
    expect(hostLinkNames()).to.not.include(r.bridge).and.not.include('ctvvxrefused');
  });

  it('contivctl cluster with a wrong CA fails with the same clear message', () => {
    const r = cluster.contivctlRun(
      ['show'],
      ['--etcd-endpoints', cluster.endpoints.join(','), '--etcd-ca', certs().otherCa, '--etcd-cert', certs().clientCert, '--etcd-key', certs().clientKey],
    );
    expect(r.status).to.equal(2);
    expect(r.stderr.split('\n')[0]).to.equal("contivctl: etcd's certificate is not trusted (check --etcd-ca) or does not name this endpoint");
    expect(r.stderr).to.not.include('use-system-ca');
  });
});

describe('e2e: cluster mode on a 3-member etcd', function () {
  this.timeout(300_000);
  const cluster = new TestCluster({ members: 3 });
  const { made, conf, add } = podsOf(cluster);
  let n1: TestNode;
  before(async () => {
    await cluster.start();
    n1 = await cluster.addNode('q1', 1);
  });
  after(async () => {
    for (const p of made) p.remove();
    await cluster.destroy();
  });

  it('one member killed: ADD and DEL keep working (once the others have a leader, if it was the leader)', async () => {
    await cluster.stopMember(0);
    // a write during the election fails on every member alike: code 11, as the quorum test below shows
    await cluster.writable();
    const p = await add(n1, 'one-down');
    const r = await runAdapter(cniEnv('DEL', 'one-down', p.ns.path), conf(n1));
    expect(r.status, r.stdout).to.equal(0);
    await waitFor('the release to reach etcd', () => !cluster.state().ips.some((x) => x.containerId === 'one-down'), 20_000);
  });

  it('quorum lost: ADD answers code 11 with nothing half-made; a DEL is queued; quorum back, the release is applied', async () => {
    const kept = await add(n1, 'survivor');
    const veths = n1.np.bridgePorts();
    const endpoints = await n1.np.endpoints();
    await cluster.stopMember(1);
    const ns = namedNetns();
    made.push(ns);
    const r = await runAdapter(cniEnv('ADD', 'no-quorum', ns.path), conf(n1));
    expect(r.status).to.equal(1);
    expect(r.json.code, r.stdout).to.equal(ErrorCode.TryAgainLater);
    expect(r.json.msg).to.match(/etcd/);
    expect(n1.np.bridgePorts()).to.deep.equal(veths);
    expect(await n1.np.endpoints()).to.deep.equal(endpoints);
    expect(inNetns(ns.path, 'ip', ['-o', 'link', 'show'])).to.not.include('eth0');

    const del = await runAdapter(cniEnv('DEL', 'survivor', kept.ns.path), conf(n1));
    expect(del.status, del.stdout).to.equal(0);
    expect(n1.np.bridgePorts()).to.have.length(veths.length - 1);

    await Promise.all([cluster.startMember(0), cluster.startMember(1)]);
    await waitFor('the queued release to reach etcd', () => !cluster.state().ips.some((x) => x.containerId === 'survivor'), 60_000);
    expect(cluster.state().ips.some((x) => x.containerId === 'no-quorum')).to.equal(false);
    const again = await runAdapter(cniEnv('ADD', 'quorum-back', ns.path), conf(n1));
    expect(again.status, again.stdout).to.equal(0);
  });
});
