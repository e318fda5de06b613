// Cluster mode on one machine: three nodes (network namespaces on an underlay bridge), each running its own
// netplugin with IPAM, blocks and the node registry in a real etcd, pods talking across a VXLAN overlay.
import { expect } from 'chai';
import { ErrorCode } from '../../src/cni/errors';
import { ipPrefix } from '../../src/netplugin/cluster';
import { inCidr } from '../../src/netplugin/ip';
import { cniEnv, runAdapter } from '../support/adapter';
import { CLUSTER_CIDR, LEASE_TTL, TestCluster, type TestNode } from '../support/cluster';
import { type TestNetns, inNetns, namedNetns, ping, sh, waitFor } from '../support/sys';

describe('e2e: cluster mode (etcd IPAM, VXLAN overlay, three nodes)', function () {
  this.timeout(300_000);
  const cluster = new TestCluster();
  const pods: TestNetns[] = [];
  let n1: TestNode;
  let n2: TestNode;
  let n3: TestNode;
  const conf = (n: TestNode) => ({ ...n.np.conf, cniVersion: '1.0.0' });
  async function pod(n: TestNode, id: string): Promise<{ ns: TestNetns; ip: string }> {
    const ns = namedNetns();
    pods.push(ns);
    const r = await runAdapter(cniEnv('ADD', id, ns.path), conf(n));
    if (r.status !== 0) throw new Error(`ADD ${id} on ${n.name}: ${r.stdout}`);
    return { ns, ip: r.json.ips[0].address.split('/')[0] };
  }
  const blockOf = (name: string) => cluster.state().nodes.find((x) => x.name === name)?.block;
  const routesIn = (n: TestNode) => sh('ip', ['-n', n.netns, '-4', 'route', 'show', 'dev', 'contivvxlan0']);

  before(async () => {
    await cluster.start();
    n1 = await cluster.addNode('node1', 1);
    n2 = await cluster.addNode('node2', 2);
    n3 = await cluster.addNode('node3', 3);
  });
  after(async () => {
    pods.forEach((p) => p.remove());
    await cluster.destroy();
  });

  it('each node registers with its own block; every node routes the others\' blocks over VXLAN', async () => {
    const s = cluster.state();
    expect(s.nodes.map((n) => n.name).sort()).to.deep.equal(['node1', 'node2', 'node3']);
    const blocks = s.nodes.map((n) => n.block);
    expect(new Set(blocks).size).to.equal(3);
    for (const b of blocks) expect(b).to.match(/^10\.200\.\d+\.0\/24$/);
    for (const n of [n1, n2, n3]) {
      const others = s.nodes.filter((x) => x.name !== n.name).map((x) => x.block);
      await waitFor(`${n.name}'s overlay routes`, () => others.every((b) => routesIn(n).includes(b)));
      // the VXLAN header comes out of the underlay's 1500
      expect(JSON.parse(sh('ip', ['-n', n.netns, '-j', 'link', 'show', 'contivvxlan0']))[0].mtu).to.equal(1450);
    }
  });

  it('a pod on node 1 pings pods on nodes 2 and 3 (MTU 1450 inside pods)', async () => {
    const a = await pod(n1, 'ping-a');
    const b = await pod(n2, 'ping-b');
    const c = await pod(n3, 'ping-c');
    expect(JSON.parse(inNetns(a.ns.path, 'ip', ['-j', 'link', 'show', 'eth0']))[0].mtu).to.equal(1450);
    expect(ping(a.ns.path, b.ip), `${a.ip} -> ${b.ip}`).to.equal(true);
    expect(ping(a.ns.path, c.ip), `${a.ip} -> ${c.ip}`).to.equal(true);
    expect(ping(c.ns.path, b.ip), `${c.ip} -> ${b.ip}`).to.equal(true);
  });

  it('3 x 50 concurrent ADDs give 150 distinct IPs, each in its node\'s block; DELs free them in etcd', async () => {
    const before = cluster.state().ips.length;
    const nss = [n1, n2, n3].flatMap((n) => Array.from({ length: 50 }, (_, i) => ({ n, id: `burst-${n.name}-${i}`, ns: namedNetns() })));
    pods.push(...nss.map((x) => x.ns));
    const adds = await Promise.all(nss.map((x) => runAdapter(cniEnv('ADD', x.id, x.ns.path), conf(x.n))));
    expect(adds.filter((r) => r.status !== 0).map((r) => r.stdout)).to.deep.equal([]);
    const ips = adds.map((r) => r.json.ips[0].address.split('/')[0]);
    expect(new Set(ips).size).to.equal(150);
    const s = cluster.state();
    expect(s.ips.length).to.equal(before + 150);
    const blocks = new Map(s.nodes.map((n) => [n.name, n.block]));
    for (const [i, x] of nss.entries()) {
      const block = blocks.get(x.n.name)!;
      expect(inCidr(ips[i], block), `${ips[i]} in ${block}`).to.equal(true);
    }
    const dels = await Promise.all(nss.map((x) => runAdapter(cniEnv('DEL', x.id, x.ns.path), conf(x.n))));
    expect(dels.filter((r) => r.status !== 0).length).to.equal(0);
    await waitFor('etcd to hold only the earlier IPs', () => cluster.state().ips.length === before);
  });

  it('etcd down: ADD answers code 11 and changes nothing; a DEL is queued and applied once etcd is back', async () => {
    const kept = await pod(n1, 'survivor');
    const portsBefore = n1.np.bridgePorts().length;
    const endpointsBefore = (await n1.np.endpoints()).length;
    await cluster.stopEtcd();

    const ns = namedNetns();
    pods.push(ns);
    const add = await runAdapter(cniEnv('ADD', 'while-etcd-down', ns.path), conf(n1));
    expect(add.status).to.not.equal(0);
    expect(add.json.code).to.equal(ErrorCode.TryAgainLater);
    expect(add.json.msg).to.match(/etcd/);
    expect(n1.np.bridgePorts().length).to.equal(portsBefore);
    expect((await n1.np.endpoints()).length).to.equal(endpointsBefore);

    const del = await runAdapter(cniEnv('DEL', 'survivor', kept.ns.path), conf(n1));
    expect(del.status, del.stdout).to.equal(0);
    expect(n1.np.bridgePorts().length).to.equal(portsBefore - 1);

    await cluster.startEtcd();
    await waitFor('the queued release to reach etcd', () => !cluster.state().ips.some((e) => e.ip === kept.ip), 30_000);
    const again = await runAdapter(cniEnv('ADD', 'after-etcd-back', ns.path), conf(n1));
    expect(again.status, again.stdout).to.equal(0);
  });

  it('a netplugin restart (kill -9) keeps its block and its pods', async () => {
    const p = await pod(n2, 'restart-pod');
    const from = await pod(n1, 'restart-probe');
    const block = blockOf('node2');
    await n2.np.stop('SIGKILL');
    await n2.np.start();
    expect(blockOf('node2')).to.equal(block);
    expect((await n2.np.endpoints()).some((e) => e.containerId === 'restart-pod')).to.equal(true);
    expect(ping(from.ns.path, p.ip)).to.equal(true);
  });

  it('a dead node leaves at lease expiry and its routes go; its block is not reused while its pods are recorded, then is taken over', async () => {
    await pod(n3, 'orphaned-pod');
    const deadBlock = blockOf('node3')!;
    await n3.np.stop('SIGKILL');
    await waitFor('node3 to leave the registry', () => !cluster.state().nodes.some((n) => n.name === 'node3'), (LEASE_TTL + 10) * 1000);
    await waitFor('node1 to drop node3\'s route', () => !routesIn(n1).includes(deadBlock));
    const blocks = cluster.state().blocks;
    expect(blocks.find((b) => b.block === deadBlock)).to.include({ node: 'node3', ownerAlive: false });
    const n4 = await cluster.addNode('node4', 4);
    expect(blockOf('node4')).to.not.equal(deadBlock);
    expect(blockOf('node4')).to.match(new RegExp(`^${CLUSTER_CIDR.split('.').slice(0, 2).join('\\.')}\\.`));
    const p4 = await pod(n4, 'newcomer');
    const p1 = await pod(n1, 'greeter');
    expect(ping(p1.ns.path, p4.ip)).to.equal(true);

    // once the dead node's pods are gone from etcd (an operator's cleanup), its block is taken over
    cluster.etcdDeletePrefix(n1, ipPrefix(deadBlock));
    const n5 = await cluster.addNode('node5', 5);
    expect(blockOf('node5')).to.equal(deadBlock);
    expect(cluster.state().blocks.find((b) => b.block === deadBlock)).to.include({ node: 'node5', ownerAlive: true });
    const p5 = await pod(n5, 'heir');
    expect(ping(p1.ns.path, p5.ip)).to.equal(true);
  });
});
