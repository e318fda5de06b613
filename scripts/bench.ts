// make bench: contivk8s + netplugin side by side with Debian's Go reference plugins (bridge + host-local)
// and a bare `node -e 0`, in one run, on the real kernel. Prints medians, p90s and ratios against the
// targets, writes results/bench-<time>.json; never fails on timing. Children run without
// NODE_EXTRA_CA_CERTS (kubelet and containerd do not set it; it adds ~100 ms to each node start).
//   BENCH_RUNS (default 30)  single ADD/DEL runs per plugin
//   BENCH_CONCURRENT (100)   parallel ADDs, then parallel DELs
//   BENCH_CYCLES (2000)      netplugin ADD/DEL cycles for the RSS growth check (10000 for the full run)
//   BENCH_RESULTS_DIR        where the JSON goes (default: results/)
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeClient } from '../src/api/axios-transport';
import { Pool4 } from '../src/netplugin/ipam';
import { Store } from '../src/netplugin/store';
import { TestNetplugin } from '../test/support/netplugin';
import { CLEAN_PATH, cniEnv, runAdapter } from '../test/support/adapter';
import { BIN, ROOT, namedNetns, processNetns, uniq } from '../test/support/sys';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 100);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 2000);
const GO_PLUGINS = '/usr/lib/cni';
const { NODE_EXTRA_CA_CERTS: _dropped, ...baseEnv } = process.env;
const say = (s = '') => process.stdout.write(`${s}\n`);

interface Stats {
  median: number;
  p90: number;
  n: number;
}
function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { median: round(at(0.5)), p90: round(at(0.9)), n: s.length };
}
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Plugin {
  name: string;
  exec: string;
  conf: object;
}

/** The env a runtime execs a plugin with; CNI_PATH is where the Go bridge plugin finds host-local. */
const pluginEnv = (command: string, containerId: string, netns: string) => ({ PATH: CLEAN_PATH, ...cniEnv(command, containerId, netns, { CNI_PATH: GO_PLUGINS }) });

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): { ms: number; r: SpawnSyncReturns<string> } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, input, encoding: 'utf8' });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
}

function execPlugin(p: Plugin, command: string, id: string, netns: string): { ms: number; ok: boolean } {
  const { ms, r } = timed(p.exec, [], pluginEnv(command, id, netns), JSON.stringify(p.conf));
  return { ms, ok: r.status === 0 };
}

const newNetns = () => namedNetns(`cni-${randomUUID()}`);

function single(plugins: Plugin[]): { plugins: Record<string, { add: Stats; del: Stats; failures: number }>; nodeBare: Stats } {
  const times = Object.fromEntries(plugins.map((p) => [p.name, { add: [] as number[], del: [] as number[], failures: 0 }]));
  const nodeBare: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // interleaved, so that the machine's noise falls on every plugin alike
    for (const p of plugins) {
      const ns = newNetns();
      const id = `single-${i}`;
      const add = execPlugin(p, 'ADD', id, ns.path);
      const del = execPlugin(p, 'DEL', id, ns.path);
      ns.remove();
      if (!add.ok || !del.ok) times[p.name].failures++;
      times[p.name].add.push(add.ms);
      times[p.name].del.push(del.ms);
    }
    // the floor of any node program: the runtime's exec of node itself
    nodeBare.push(timed(process.execPath, ['-e', '0'], baseEnv).ms);
  }
  return {
    plugins: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { add: stats(v.add), del: stats(v.del), failures: v.failures }])),
    nodeBare: stats(nodeBare),
  };
}

async function concurrent(p: Plugin): Promise<{ addWallMs: number; delWallMs: number; failures: number; distinctIps: number }> {
  const nss = Array.from({ length: CONCURRENT }, newNetns);
  try {
    let t0 = process.hrtime.bigint();
    const adds = await Promise.all(nss.map((ns, i) => runAdapter(pluginEnv('ADD', `conc-${i}`, ns.path), p.conf, p.exec)));
    const addWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    t0 = process.hrtime.bigint();
    const dels = await Promise.all(nss.map((ns, i) => runAdapter(pluginEnv('DEL', `conc-${i}`, ns.path), p.conf, p.exec)));
    const delWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const ips = adds.filter((a) => a.status === 0).map((a) => a.json.ips?.[0]?.address.split('/')[0]);
    return { addWallMs: round(addWallMs), delWallMs: round(delWallMs), failures: [...adds, ...dels].filter((r) => r.status !== 0).length, distinctIps: new Set(ips).size };
  } finally {
    nss.forEach((ns) => ns.remove());
  }
}

function peakRssKiB(p: Plugin, runs = 5): Stats & { max: number } {
  const rss: number[] = [];
  const out = path.join(os.tmpdir(), `ctv-rss-${process.pid}`);
  for (let i = 0; i < runs; i++) {
    const ns = newNetns();
    spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, p.exec], { env: pluginEnv('ADD', `rss-${i}`, ns.path), input: JSON.stringify(p.conf) });
    rss.push(Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop()));
    execPlugin(p, 'DEL', `rss-${i}`, ns.path);
    ns.remove();
  }
  fs.rmSync(out, { force: true });
  return { ...stats(rss), max: Math.max(...rss) };
}

const vmRssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1]);

/**
 * The daemon's RSS across ADD/DEL cycles straight over its socket (the adapter's exec is not the subject).
 * V8 grows its heap for a while before its first full collections (a sawtooth up to ~50 MiB here, then
 * back to ~20 MiB), so the baseline is taken after a warm-up long enough to reach that steady state; the
 * JS heap in use (from /metrics) is reported beside RSS to tell a leak from heap sizing.
 */
async function rssGrowth(np: TestNetplugin): Promise<{ warmup: number; cycles: number; baselineKiB: number; afterKiB: number; maxKiB: number; growthPct: number; heapUsedMiB: { baseline: number; after: number }; msPerCycle: number }> {
  const pod = await processNetns();
  const client = nodeClient(np.socket, 30_000);
  const warmup = Math.min(3000, Math.max(200, Math.floor(CYCLES / 3)));
  const heapMiB = async () => round(metric(await client.metrics(), 'nodejs_heap_size_used_bytes') / 2 ** 20, 1);
  const cycle = async (i: number) => {
    const attr = { CNI_CONTAINERID: `cycle-${i}`, K8S_POD_INFRA_CONTAINER_ID: `cycle-${i}`, CNI_IFNAME: 'eth0', CNI_NETNS: pod.path, K8S_POD_NAME: 'cycle', K8S_POD_NAMESPACE: 'bench' };
    await client.addPod(attr);
    await client.delPod(attr);
  };
  try {
    for (let i = 0; i < warmup; i++) await cycle(i);
    const baselineKiB = vmRssKiB(np.pid!);
    const heapBefore = await heapMiB();
    let maxKiB = baselineKiB;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CYCLES; i++) {
      await cycle(warmup + i);
      if (i % 500 === 0) maxKiB = Math.max(maxKiB, vmRssKiB(np.pid!));
    }
    const msPerCycle = Number(process.hrtime.bigint() - t0) / 1e6 / CYCLES;
    const afterKiB = vmRssKiB(np.pid!);
    return { warmup, cycles: CYCLES, baselineKiB, afterKiB, maxKiB: Math.max(maxKiB, afterKiB), growthPct: round(((afterKiB - baselineKiB) / baselineKiB) * 100), heapUsedMiB: { baseline: heapBefore, after: await heapMiB() }, msPerCycle: round(msPerCycle) };
  } finally {
    pod.remove();
  }
}

/** Allocation = next free address + its durable pending record (SQLite, synchronous=FULL), as an ADD does. */
function ipamAllocation(inUse: number, samples = 500): Stats {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-ipam-'));
  try {
    const pool = new Pool4('10.0.0.0/16');
    const store = new Store(dir);
    const free = Array.from({ length: pool.size + 1 }, (_, i) => pool.cidr.network + 1 + i).filter((ip) => ip !== pool.gateway);
    // random occupancy (a long-lived node's, not a fresh contiguous block), recorded in one transaction
    for (let i = free.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [free[i], free[j]] = [free[j], free[i]];
    }
    const row = (ip: number, id: string) => ({ containerId: id, ifname: 'eth0', ipv4: ip, ipv6: null, hostVeth: `h${id}`, mac: '', netns: '', podName: '', podNamespace: '', state: 'ready' as const, createdAt: '' });
    store.insertMany(free.slice(0, inUse).map((ip, i) => row(ip, `fill-${i}`)));
    free.slice(0, inUse).forEach((ip) => pool.markUsed(ip));
    pool.resumeAfter(free[Math.floor(Math.random() * inUse)] ?? pool.cidr.network);
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = process.hrtime.bigint();
      const ip = pool.next()!;
      store.insert(row(ip, `sample-${i}`), { cursor4: String(ip) });
      pool.markUsed(ip);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    store.close();
    return stats(times);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-bench-'));
  const np = new TestNetplugin({ subnet: '10.248.0.0/16' });
  const goBridge = uniq('ctvgo', 4);
  const plugins: Record<'contivk8s' | 'go', Plugin> = {
    contivk8s: { name: 'contivk8s', exec: path.join(BIN, 'contivk8s'), conf: { cniVersion: '1.0.0', name: 'bench', type: 'contivk8s', socket: np.socket } },
    go: { name: 'go bridge+host-local', exec: path.join(GO_PLUGINS, 'bridge'), conf: { cniVersion: '1.0.0', name: 'gobench', type: 'bridge', bridge: goBridge, isGateway: true, ipam: { type: 'host-local', subnet: '10.247.0.0/16', dataDir: path.join(work, 'host-local') } } },
  };
  try {
    await np.start();
    say(`make bench ${started.toISOString()}: ${os.cpus().length} x ${os.cpus()[0].model}, ${os.release()}, node ${process.version}; NODE_EXTRA_CA_CERTS unset for children`);
    say(`single ADD/DEL: ${RUNS} runs each, interleaved ...`);
    const singleRuns = single([plugins.contivk8s, plugins.go]);
    const node = singleRuns.nodeBare;
    say(`${CONCURRENT} concurrent ADDs then DELs ...`);
    const conc = { contivk8s: await concurrent(plugins.contivk8s), go: await concurrent(plugins.go) };
    say('adapter peak RSS ...');
    const rss = { contivk8s: peakRssKiB(plugins.contivk8s), go: peakRssKiB(plugins.go) };
    say(`netplugin RSS over ${CYCLES} ADD/DEL cycles ...`);
    const growth = await rssGrowth(np);
    say('IPAM allocation, /16 ...');
    const ipam = { empty: ipamAllocation(0), inUse60k: ipamAllocation(60_000) };

    const ours = singleRuns.plugins[plugins.contivk8s.name];
    const go = singleRuns.plugins[plugins.go.name];
    const results = {
      date: started.toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0].model, kernel: os.release(), memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version },
      command: `make bench (BENCH_RUNS=${RUNS} BENCH_CONCURRENT=${CONCURRENT} BENCH_CYCLES=${CYCLES})`,
      unit: 'ms, whole-process wall time measured from the parent; RSS in KiB',
      single: { contivk8s: ours, go, nodeBare: node },
      ratios: {
        addVsNode: round(ours.add.median / node.median), addVsGo: round(ours.add.median / go.add.median),
        delVsNode: round(ours.del.median / node.median), delVsGo: round(ours.del.median / go.del.median),
        concurrentAddWallVsGo: round(conc.contivk8s.addWallMs / conc.go.addWallMs),
      },
      concurrent: { n: CONCURRENT, ...conc },
      peakRssKiB: rss,
      netpluginRss: growth,
      ipamAllocationMs: { ...ipam, ratio: round(ipam.inUse60k.median / ipam.empty.median) },
    };
    const targets = [
      ['ADD <= 1.5x node -e 0', results.ratios.addVsNode <= 1.5, `${results.ratios.addVsNode}x`],
      ['ADD <= 4x Go ADD', results.ratios.addVsGo <= 4, `${results.ratios.addVsGo}x`],
      [`${CONCURRENT} concurrent: 0 failures, 0 duplicate IPs`, conc.contivk8s.failures === 0 && conc.contivk8s.distinctIps === CONCURRENT, `${conc.contivk8s.failures} failures, ${conc.contivk8s.distinctIps} distinct IPs`],
      ['concurrent ADD wall <= 3x Go', results.ratios.concurrentAddWallVsGo <= 3, `${results.ratios.concurrentAddWallVsGo}x`],
      ['adapter peak RSS <= 50 MiB', rss.contivk8s.max <= 50 * 1024, `${round(rss.contivk8s.max / 1024, 1)} MiB`],
      [`netplugin RSS growth < 5% over ${CYCLES} cycles`, growth.growthPct < 5, `${growth.growthPct}%`],
      ['allocation at 60 000 in use <= 2x empty', results.ipamAllocationMs.ratio <= 2, `${results.ipamAllocationMs.ratio}x`],
    ] as const;

    const dir = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ ...results, targets: targets.map(([name, met, value]) => ({ name, met, value })) }, null, 2) + '\n');

    say(`\n| measurement | contivk8s | Go bridge+host-local | node -e 0 | ratio |`);
    say('|---|---|---|---|---|');
    say(`| single ADD, median (p90) ms | ${ours.add.median} (${ours.add.p90}) | ${go.add.median} (${go.add.p90}) | ${node.median} (${node.p90}) | ${results.ratios.addVsNode}x node, ${results.ratios.addVsGo}x Go |`);
    say(`| single DEL, median (p90) ms | ${ours.del.median} (${ours.del.p90}) | ${go.del.median} (${go.del.p90}) | | ${results.ratios.delVsNode}x node, ${results.ratios.delVsGo}x Go |`);
    say(`| ${CONCURRENT} concurrent ADD / DEL wall ms | ${conc.contivk8s.addWallMs} / ${conc.contivk8s.delWallMs} | ${conc.go.addWallMs} / ${conc.go.delWallMs} | | ${results.ratios.concurrentAddWallVsGo}x Go (ADD) |`);
    say(`| ${CONCURRENT} concurrent: failures, distinct IPs | ${conc.contivk8s.failures}, ${conc.contivk8s.distinctIps} | ${conc.go.failures}, ${conc.go.distinctIps} | | |`);
    say(`| peak RSS of one ADD, median (max) MiB | ${round(rss.contivk8s.median / 1024, 1)} (${round(rss.contivk8s.max / 1024, 1)}) | ${round(rss.go.median / 1024, 1)} (${round(rss.go.max / 1024, 1)}) | | |`);
    say(`| netplugin RSS over ${CYCLES} ADD/DEL cycles after ${growth.warmup} warm-up | ${round(growth.baselineKiB / 1024, 1)} -> ${round(growth.afterKiB / 1024, 1)} MiB (${growth.growthPct}%, max ${round(growth.maxKiB / 1024, 1)}), JS heap in use ${growth.heapUsedMiB.baseline} -> ${growth.heapUsedMiB.after} MiB, ${growth.msPerCycle} ms/cycle | | | |`);
    say(`| IPAM allocation (pick + durable record), /16 | empty ${ipam.empty.median} ms, 60 000 in use ${ipam.inUse60k.median} ms | | | ${results.ipamAllocationMs.ratio}x |`);
    say('\ntargets (reported, never enforced):');
    for (const [name, met, value] of targets) say(`  ${met ? 'met   ' : 'MISSED'}  ${name}: ${value}`);
    say(`\nresults: ${path.relative(ROOT, file)}`);
  } finally {
    await np.destroy();
    spawnSync('ip', ['link', 'del', goBridge]);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack}\n`);
  process.exit(1);
});
