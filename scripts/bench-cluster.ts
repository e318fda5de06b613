// make bench-cluster: cluster mode at scale, measured on one real node. Simulated nodes (clients without
// kernels: a lease, a block and 110 pods' IP keys each) are registered in a real etcd (mutual TLS); one real
// netplugin follows them. Measured at each size: the time from a new node's registration to its route on the
// real node, the real node's CPU and etcd calls while it idles (watch + resync), and, at the largest size,
// ADD latency over its socket against an embedded-store netplugin in the same run. Prints a table and the
// targets, writes results/bench-cluster-<time>.json; never fails on timing.
//   BENCH_CLUSTER_SIZES (default 50,100)  simulated nodes, measured in turn
//   BENCH_CLUSTER_PODS (110)              IP keys per simulated node
//   BENCH_CLUSTER_IDLE_S (30)             idle window for CPU and etcd calls
//   BENCH_CLUSTER_CYCLES (300)            ADD/DEL cycles for the latency comparison
//   BENCH_RESULTS_DIR                     where the JSON goes (default: results/)
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Etcd3, Lease } from 'etcd3';
import type { NetpluginClient } from '../src/api/client';
import { blockKey, ipKey, nodeKey } from '../src/etcd/layout';
import type { IpRecord, NodeRecord } from '../src/etcd/records';
import { bigIntToIpv6, intToIpv4, parseCidr4, parseCidr6 } from '../src/ip/ip';
import { blocksOf } from '../src/netplugin/cluster/blocks';
import { RESYNC_MS } from '../src/netplugin/cluster/registry';
import { CLUSTER_CIDR, CLUSTER_CIDR6, TestCluster, type TestNode } from '../testbed/cluster';
import { TestNetplugin } from '../testbed/netplugin';
import { processNetns, ROOT, sh } from '../testbed/sys';
import { metric, round, say, stats } from './bench-stats';

const SIZES = (process.env.BENCH_CLUSTER_SIZES ?? '50,100').split(',').map(Number);
const PODS = Number(process.env.BENCH_CLUSTER_PODS ?? 110);
const IDLE_S = Number(process.env.BENCH_CLUSTER_IDLE_S ?? 30);
const CYCLES = Number(process.env.BENCH_CLUSTER_CYCLES ?? 300);
const CONVERGENCE_RUNS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Simulated nodes: what a netplugin writes, without the kernel side. Their underlay IPs carry no traffic. */
class Simulator {
  private readonly leases = new Map<string, Lease>();
  readonly records: NodeRecord[] = [];
  private readonly free4: string[];
  private readonly free6: string[];

  constructor(
    private readonly etcd: Etcd3,
    taken: string[],
  ) {
    this.free4 = blocksOf(CLUSTER_CIDR, 24).filter((b) => !taken.includes(b));
    this.free6 = blocksOf(CLUSTER_CIDR6, 64).filter((b) => !taken.includes(b));
  }

  async register(name: string, pods: number): Promise<NodeRecord> {
    const block = this.free4.shift()!;
    const block6 = this.free6.shift()!;
    const i = this.leases.size;
    const record: NodeRecord = {
      name,
      nodeIp: `192.168.${214 + (i >> 8)}.${i & 255}`,
      block,
      block6,
      vtepMac: `0a:${randomBytes(5).toString('hex').match(/../g)!.join(':')}`,
    };
    const claimedAt = new Date().toISOString();
    const c = this.etcd;
    await c
      .put(blockKey(block))
      .value(JSON.stringify({ node: name, claimedAt }))
      .exec();
    await c
      .put(blockKey(block6))
      .value(JSON.stringify({ node: name, claimedAt }))
      .exec();
    const v4 = parseCidr4(block).network;
    const v6 = parseCidr6(block6).network;
    for (let from = 0; from < pods; from += 32) {
      const ops = [];
      for (let p = from; p < Math.min(pods, from + 32); p++) {
        const rec = JSON.stringify({
          node: name,
          containerId: `${name}-pod-${p}`,
          ifname: 'eth0',
          netns: '',
          podName: `pod-${p}`,
          podNamespace: 'bench',
          createdAt: claimedAt,
        } satisfies IpRecord);
        ops.push(c.put(ipKey(block, intToIpv4(v4 + 2 + p))).value(rec), c.put(ipKey(block6, bigIntToIpv6(v6 + 2n + BigInt(p)))).value(rec));
      }
      // a transaction that always applies: 64 puts in one request
      await c
        .if(nodeKey(name), 'Version', '>', -1)
        .then(...ops)
        .commit();
    }
    const lease = c.lease(60);
    await lease.put(nodeKey(name)).value(JSON.stringify(record)).exec();
    this.leases.set(name, lease);
    this.records.push(record);
    return record;
  }

  /** A node leaving: its registration goes (as at lease expiry); its block and IP keys stay recorded. */
  async deregister(name: string): Promise<void> {
    await this.leases.get(name)?.revoke();
    this.leases.delete(name);
  }

  get size(): number {
    return this.leases.size;
  }

  close(): void {
    for (const l of this.leases.values()) l.release();
  }
}

const cpuTicks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
};

async function routeConvergence(sim: Simulator, node: TestNode, runs: number): Promise<number[]> {
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const name = `newcomer-${sim.size}-${r}`;
    const t0 = performance.now();
    const rec = await sim.register(name, 0);
    for (;;) {
      if (sh('ip', ['-n', node.netns, 'route', 'show', rec.block]).trim()) break;
      if (performance.now() - t0 > 30_000) throw new Error(`no route for ${rec.block} after 30 s`);
      await sleep(5);
    }
    ms.push(performance.now() - t0);
    await sim.deregister(name);
  }
  return ms;
}

async function idleCost(node: TestNode): Promise<{ cpuPctOfCore: number; etcdRequestsPerS: number; windowS: number }> {
  const client = node.np.client;
  const [cpu0, req0, t0] = [cpuTicks(node.np.pid!), metric(await client.metrics(), 'contiv_netplugin_etcd_requests_total'), performance.now()];
  await sleep(IDLE_S * 1000);
  const windowS = (performance.now() - t0) / 1000;
  const cpu = (cpuTicks(node.np.pid!) - cpu0) / 100;
  const reqs = metric(await client.metrics(), 'contiv_netplugin_etcd_requests_total') - req0;
  return { cpuPctOfCore: round((cpu / windowS) * 100), etcdRequestsPerS: round(reqs / windowS, 3), windowS: round(windowS, 1) };
}

async function addLatency(client: NetpluginClient, cycles: number): Promise<number[]> {
  const pod = await processNetns();
  const ms: number[] = [];
  try {
    for (let i = 0; i < cycles + 20; i++) {
      const attr = { CNI_CONTAINERID: `lat-${i}`, CNI_IFNAME: 'eth0', CNI_NETNS: pod.path };
      const t0 = performance.now();
      await client.addPod(attr);
      if (i >= 20) ms.push(performance.now() - t0);
      await client.delPod(attr);
    }
  } finally {
    pod.remove();
  }
  return ms;
}

async function main(): Promise<void> {
  const started = new Date();
  const cluster = new TestCluster({ dualStack: true });
  const embedded = new TestNetplugin({ subnet: '10.246.0.0/16', subnet6: 'fd00:246::/64' });
  let sim: Simulator | undefined;
  try {
    await cluster.start();
    const node = await cluster.addNode('real', 1);
    await embedded.start();
    const etcd = cluster.client();
    const s = cluster.state();
    sim = new Simulator(
      etcd,
      s.nodes.flatMap((n) => [n.block, n.block6 ?? '']),
    );
    say(
      `make bench-cluster ${started.toISOString()}: ${os.cpus().length} x ${os.cpus()[0].model}, ` +
        `sizes ${SIZES.join(', ')} simulated nodes x ${PODS} pods (v4 + v6 keys), resync every ${RESYNC_MS / 1000} s`,
    );
    const sizes = [];
    for (const size of SIZES) {
      const t0 = performance.now();
      while (sim.size < size) await sim.register(`sim-${sim.size}`, PODS);
      const registeredS = (performance.now() - t0) / 1000;
      // the real node programs every peer from the watch; wait until the last one is routed
      const last = sim.records.filter((n) => n.name.startsWith('sim-')).map((n) => n.block);
      const tRoutes = performance.now();
      while (!last.every((b) => sh('ip', ['-n', node.netns, 'route', 'show', b]).trim())) await sleep(50);
      const programmedS = (performance.now() - tRoutes) / 1000;
      say(`${size} nodes registered in ${round(registeredS, 1)} s; the real node routed them all ${round(programmedS, 1)} s later; measuring ...`);
      const convergence = await routeConvergence(sim, node, CONVERGENCE_RUNS);
      const idle = await idleCost(node);
      const keys = (await etcd.getAll().prefix('/contiv/ips/').keys()).length;
      sizes.push({
        nodes: size + 1,
        ipKeys: keys,
        routeConvergenceMs: { ...stats(convergence), samples: convergence.map((x) => round(x)) },
        idle,
        registrationS: round(registeredS, 1),
      });
    }
    say(`ADD latency over the socket, ${CYCLES} cycles each: cluster mode (${sizes[sizes.length - 1].ipKeys} IP keys) and embedded store ...`);
    const clusterAdd = await addLatency(node.np.client, CYCLES);
    const embeddedAdd = await addLatency(embedded.client, CYCLES);
    const largest = sizes[sizes.length - 1];
    const [addCluster, addEmbedded] = [stats(clusterAdd), stats(embeddedAdd)];
    const results = {
      date: started.toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0].model, kernel: os.release(), node: process.version },
      command:
        `make bench-cluster (BENCH_CLUSTER_SIZES=${SIZES.join(',')} BENCH_CLUSTER_PODS=${PODS} BENCH_CLUSTER_IDLE_S=${IDLE_S} ` +
        `BENCH_CLUSTER_CYCLES=${CYCLES})`,
      sizes,
      addOverSocketMs: {
        cluster: addCluster,
        embedded: addEmbedded,
        ratio: round(addCluster.median / addEmbedded.median),
      },
    };
    const targets = [
      [
        `route convergence <= 2 s at ${largest.nodes} nodes`,
        largest.routeConvergenceMs.median <= 2000,
        `${largest.routeConvergenceMs.median} ms median, ${largest.routeConvergenceMs.p90} ms p90`,
      ],
      ['resync CPU on a node < 5% of a core', largest.idle.cpuPctOfCore < 5, `${largest.idle.cpuPctOfCore}%`],
      ["ADD in cluster mode <= 1.5x the embedded store's", results.addOverSocketMs.ratio <= 1.5, `${results.addOverSocketMs.ratio}x`],
    ] as const;
    const dir = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `bench-cluster-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, `${JSON.stringify({ ...results, targets: targets.map(([name, met, value]) => ({ name, met, value })) }, null, 2)}\n`);

    say('\n| nodes | IP keys | route convergence, median (p90) ms | idle CPU, % of a core | etcd calls/s from the node |');
    say('|---|---|---|---|---|');
    for (const x of sizes)
      say(`| ${x.nodes} | ${x.ipKeys} | ${x.routeConvergenceMs.median} (${x.routeConvergenceMs.p90}) | ${x.idle.cpuPctOfCore} | ${x.idle.etcdRequestsPerS} |`);
    const add = results.addOverSocketMs;
    say(
      `\nADD over the socket, median (p90) ms: cluster mode ${add.cluster.median} (${add.cluster.p90}), ` +
        `embedded ${add.embedded.median} (${add.embedded.p90}): ${add.ratio}x`,
    );
    say('\ntargets (reported, never enforced):');
    for (const [name, met, value] of targets) say(`  ${met ? 'met   ' : 'MISSED'}  ${name}: ${value}`);
    say(`\nresults: ${path.relative(ROOT, file)}`);
  } finally {
    sim?.close();
    await embedded.destroy();
    await cluster.destroy();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench-cluster failed: ${err.stack}\n`);
  process.exit(1);
});
