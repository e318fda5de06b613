// make bench: contivk8s + netplugin side by side with Debian's Go reference plugins (bridge + host-local)
// and the bare runtimes (`node -e 0`, `bun -e 0`), in one run, on the real kernel. Prints medians, p90s and
// ratios against the targets, writes results/bench-<time>.json and a chart of the per-exec latency
// distributions (results/bench-<time>.svg); never fails on timing. Children run without NODE_EXTRA_CA_CERTS
// (kubelet and containerd do not set it; it adds ~100 ms to each node start).
//   BENCH_RUNS (default 30)  single ADD/CHECK/DEL/VERSION runs per plugin
//   BENCH_CONCURRENT (100)   parallel ADDs, then parallel DELs
//   BENCH_CYCLES (2000)      netplugin ADD/DEL cycles over its socket: its own ADD time and RSS growth
//                            (10000 for the full run)
//   BENCH_RESULTS_DIR        where the JSON and the SVG go (default: results/)
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeClient } from '../src/api/axios-transport';
import { Pool4 } from '../src/netplugin/ipam';
import { Store } from '../src/netplugin/store';
import { CLEAN_PATH, cniEnv, runAdapter } from '../testbed/adapter';
import { TestNetplugin } from '../testbed/netplugin';
import { BIN, namedNetns, processNetns, ROOT, uniq } from '../testbed/sys';
import { latencyChart } from './bench-chart';
import type { ExecPlan, ExecSample, ExecSamples } from './bench-execs';
import { metric, round, type Stats, say, stats } from './bench-stats';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 100);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 2000);
const GO_PLUGINS = '/usr/lib/cni';
const BUN = path.join(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun');
const COMMANDS = ['ADD', 'CHECK', 'DEL', 'VERSION'] as const;

interface Plugin {
  name: string;
  exec: string;
  conf: Record<string, unknown>;
}

/** Per exec: wall, CPU (user+sys) and peak RSS, and how many of the runs failed. */
interface ExecStats {
  wallMs: Stats;
  cpuMs: Stats;
  maxRssMiB: Stats;
  failures: number;
}
const execStats = (xs: ExecSample[]): ExecStats => ({
  wallMs: stats(xs.map((x) => x.wallMs)),
  cpuMs: stats(xs.map((x) => x.cpuMs)),
  maxRssMiB: stats(xs.map((x) => x.maxRssKiB / 1024)),
  failures: xs.filter((x) => !x.ok).length,
});

/** The env a runtime execs a plugin with; CNI_PATH is where the Go bridge plugin finds host-local. */
const pluginEnv = (command: string, containerId: string, netns: string) => ({
  PATH: CLEAN_PATH,
  ...cniEnv(command, containerId, netns, { CNI_PATH: GO_PLUGINS }),
});
const newNetns = () => namedNetns(`cni-${randomUUID()}`);

/** The single-exec loop, in the pinned Bun (scripts/bench-execs.ts), which reports each child's CPU and RSS. */
function single(plugins: Plugin[]): ExecSamples {
  const plan: ExecPlan = {
    runs: RUNS,
    plugins: plugins.map((p) => ({
      name: p.name,
      exec: p.exec,
      conf: p.conf,
      env: { CNI_PATH: GO_PLUGINS, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=single' },
    })),
    // the floor of any program on each runtime: the exec of the runtime itself
    bare: [
      { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
      { name: 'bun -e 0', argv: [BUN, '-e', '0'] },
    ],
    baseEnv: { PATH: CLEAN_PATH },
  };
  const r = spawnSync(BUN, [path.join(ROOT, 'scripts/bench-execs.ts')], { input: JSON.stringify(plan), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`bench-execs: ${r.stderr}`);
  return JSON.parse(r.stdout) as ExecSamples;
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
    return {
      addWallMs: round(addWallMs),
      delWallMs: round(delWallMs),
      failures: [...adds, ...dels].filter((r) => r.status !== 0).length,
      distinctIps: new Set(ips).size,
    };
  } finally {
    for (const ns of nss) ns.remove();
  }
}

const vmRssKiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

/**
 * The daemon alone, over its socket (the adapter's exec is not the subject): its own ADD time, and its RSS
 * across ADD/DEL cycles. V8 grows its heap for a while before its first full collections (a sawtooth up to
 * ~50 MiB here, then back to ~20 MiB), so the baseline is taken after a warm-up long enough to reach that
 * steady state; the JS heap in use (from /metrics) is reported beside RSS to tell a leak from heap sizing.
 */
async function daemonCycles(np: TestNetplugin): Promise<{
  addOverSocketMs: Stats;
  warmup: number;
  cycles: number;
  baselineKiB: number;
  afterKiB: number;
  maxKiB: number;
  growthPct: number;
  heapUsedMiB: { baseline: number; after: number };
  msPerCycle: number;
}> {
  const pod = await processNetns();
  const client = nodeClient(np.socket, 30_000);
  const warmup = Math.min(3000, Math.max(200, Math.floor(CYCLES / 3)));
  const heapMiB = async () => round(metric(await client.metrics(), 'nodejs_heap_size_used_bytes') / 2 ** 20, 1);
  const addMs: number[] = [];
  const cycle = async (i: number) => {
    const attr = {
      CNI_CONTAINERID: `cycle-${i}`,
      K8S_POD_INFRA_CONTAINER_ID: `cycle-${i}`,
      CNI_IFNAME: 'eth0',
      CNI_NETNS: pod.path,
      K8S_POD_NAME: 'cycle',
      K8S_POD_NAMESPACE: 'bench',
    };
    const t0 = process.hrtime.bigint();
    await client.addPod(attr);
    addMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
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
    return {
      addOverSocketMs: stats(addMs.slice(warmup)),
      warmup,
      cycles: CYCLES,
      baselineKiB,
      afterKiB,
      maxKiB: Math.max(maxKiB, afterKiB),
      growthPct: round(((afterKiB - baselineKiB) / baselineKiB) * 100),
      heapUsedMiB: { baseline: heapBefore, after: await heapMiB() },
      msPerCycle: round(msPerCycle),
    };
  } finally {
    pod.remove();
  }
}

/** Allocation = next free address + its record and cursor, committed durably (SQLite, synchronous=FULL). */
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
    const row = (ip: number, id: string) => ({
      containerId: id,
      ifname: 'eth0',
      ipv4: ip,
      ipv6: null,
      hostVeth: `h${id}`,
      mac: '',
      netns: '',
      podName: '',
      podNamespace: '',
      state: 'ready' as const,
      createdAt: '',
    });
    store.insertMany(free.slice(0, inUse).map((ip, i) => row(ip, `fill-${i}`)));
    for (const ip of free.slice(0, inUse)) pool.markUsed(ip);
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
    go: {
      name: 'go bridge+host-local',
      exec: path.join(GO_PLUGINS, 'bridge'),
      conf: {
        cniVersion: '1.0.0',
        name: 'gobench',
        type: 'bridge',
        bridge: goBridge,
        isGateway: true,
        ipam: { type: 'host-local', subnet: '10.247.0.0/16', dataDir: path.join(work, 'host-local') },
      },
    },
  };
  try {
    await np.start();
    say(
      `make bench ${started.toISOString()}: ${os.cpus().length} x ${os.cpus()[0].model}, ${os.release()}, node ${process.version}, ` +
        `bun ${spawnSync(BUN, ['--version'], { encoding: 'utf8' }).stdout.trim()}; NODE_EXTRA_CA_CERTS unset for children`,
    );
    say(`single ADD/CHECK/DEL/VERSION: ${RUNS} runs each, interleaved with node -e 0 and bun -e 0 ...`);
    const samples = single([plugins.contivk8s, plugins.go]);
    const per = (who: string) => Object.fromEntries(Object.entries(samples[who]).map(([what, xs]) => [what, execStats(xs)]));
    const ours = per(plugins.contivk8s.name);
    const go = per(plugins.go.name);
    const node = per('node -e 0').exec;
    const bun = per('bun -e 0').exec;
    say(`${CONCURRENT} concurrent ADDs then DELs ...`);
    const conc = { contivk8s: await concurrent(plugins.contivk8s), go: await concurrent(plugins.go) };
    say(`netplugin over its socket: ${CYCLES} ADD/DEL cycles ...`);
    const daemon = await daemonCycles(np);
    say('IPAM allocation, /16 ...');
    const ipam = { empty: ipamAllocation(0), inUse60k: ipamAllocation(60_000) };

    const ratio = (a: number, b: number) => round(a / b);
    const results = {
      date: started.toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0].model,
        kernel: os.release(),
        memGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        bun: spawnSync(BUN, ['--version'], { encoding: 'utf8' }).stdout.trim(),
      },
      command: `make bench (BENCH_RUNS=${RUNS} BENCH_CONCURRENT=${CONCURRENT} BENCH_CYCLES=${CYCLES})`,
      unit: 'wall ms of the whole process measured from the parent; CPU ms = user + sys of that process; RSS in MiB',
      single: { contivk8s: ours, go, nodeBare: node, bunBare: bun },
      samples,
      ratios: {
        addVsGo: ratio(ours.ADD.wallMs.median, go.ADD.wallMs.median),
        addVsNode: ratio(ours.ADD.wallMs.median, node.wallMs.median),
        addVsBun: ratio(ours.ADD.wallMs.median, bun.wallMs.median),
        delVsGo: ratio(ours.DEL.wallMs.median, go.DEL.wallMs.median),
        checkVsGo: ratio(ours.CHECK.wallMs.median, go.CHECK.wallMs.median),
        versionVsGo: ratio(ours.VERSION.wallMs.median, go.VERSION.wallMs.median),
        concurrentAddWallVsGo: ratio(conc.contivk8s.addWallMs, conc.go.addWallMs),
        concurrentDelWallVsGo: ratio(conc.contivk8s.delWallMs, conc.go.delWallMs),
      },
      concurrent: { n: CONCURRENT, ...conc },
      netplugin: daemon,
      ipamAllocationMs: { ...ipam, ratio: round(ipam.inUse60k.median / ipam.empty.median) },
    };
    const targets = [
      ['single ADD <= 1.5x Go ADD', results.ratios.addVsGo <= 1.5, `${results.ratios.addVsGo}x`],
      ['single ADD <= 0.75x node -e 0', results.ratios.addVsNode <= 0.75, `${results.ratios.addVsNode}x`],
      ['single DEL <= 1.5x Go DEL', results.ratios.delVsGo <= 1.5, `${results.ratios.delVsGo}x`],
      [
        `${CONCURRENT} concurrent ADDs: 0 failures, ${CONCURRENT} distinct IPs`,
        conc.contivk8s.failures === 0 && conc.contivk8s.distinctIps === CONCURRENT,
        `${conc.contivk8s.failures} failures, ${conc.contivk8s.distinctIps} distinct IPs`,
      ],
      [`${CONCURRENT} concurrent ADD wall <= 1.5x Go`, results.ratios.concurrentAddWallVsGo <= 1.5, `${results.ratios.concurrentAddWallVsGo}x`],
      ['CPU (user+sys) per ADD exec <= 12 ms', ours.ADD.cpuMs.median <= 12, `${ours.ADD.cpuMs.median} ms`],
      ['peak RSS per ADD exec <= 40 MiB', ours.ADD.maxRssMiB.median <= 40, `${round(ours.ADD.maxRssMiB.median, 1)} MiB`],
      ["the netplugin's own ADD over its socket <= 4 ms", daemon.addOverSocketMs.median <= 4, `${daemon.addOverSocketMs.median} ms`],
      [`netplugin RSS growth < 5% over ${CYCLES} cycles`, daemon.growthPct < 5, `${daemon.growthPct}%`],
      ['allocation at 60 000 in use <= 2x empty', results.ipamAllocationMs.ratio <= 2, `${results.ipamAllocationMs.ratio}x`],
    ] as const;

    const dir = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const stem = path.join(dir, `bench-${started.toISOString().replace(/[:.]/g, '-')}`);
    fs.writeFileSync(`${stem}.json`, `${JSON.stringify({ ...results, targets: targets.map(([name, met, value]) => ({ name, met, value })) }, null, 2)}\n`);
    const wall = (xs: ExecSample[]) => xs.map((x) => x.wallMs);
    const bare = [
      { label: 'node -e 0', samples: wall(samples['node -e 0'].exec), color: '#7f7f7f' },
      { label: 'bun -e 0', samples: wall(samples['bun -e 0'].exec), color: '#b8860b' },
    ];
    const panel = (command: 'ADD' | 'DEL') => ({
      title: command,
      series: [
        { label: 'contivk8s', samples: wall(samples[plugins.contivk8s.name][command]), color: '#1f77b4' },
        { label: 'Go bridge+host-local', samples: wall(samples[plugins.go.name][command]), color: '#2ca02c' },
        ...bare,
      ],
    });
    fs.writeFileSync(
      `${stem}.svg`,
      latencyChart(`make bench ${started.toISOString()}: ${RUNS} execs each, ${os.cpus().length} x ${os.cpus()[0].model}`, [panel('ADD'), panel('DEL')]),
    );

    const cell = (e: ExecStats) => `${e.wallMs.median} (${e.wallMs.p90})`;
    const row = (...cells: (string | number)[]) => say(`| ${cells.join(' | ')} |`);
    say();
    row('per exec, median (p90)', 'contivk8s', 'Go bridge+host-local', 'ratio');
    row('---', '---', '---', '---');
    for (const c of COMMANDS) row(`${c} wall ms`, cell(ours[c]), cell(go[c]), `${ratio(ours[c].wallMs.median, go[c].wallMs.median)}x`);
    row('ADD CPU (user+sys) ms', `${ours.ADD.cpuMs.median} (${ours.ADD.cpuMs.p90})`, `${go.ADD.cpuMs.median} (${go.ADD.cpuMs.p90})`, '');
    row('ADD peak RSS MiB', round(ours.ADD.maxRssMiB.median, 1), round(go.ADD.maxRssMiB.median, 1), '');
    row(
      'bare runtime exec wall ms (CPU ms, RSS MiB)',
      `node -e 0: ${cell(node)} (${node.cpuMs.median}, ${round(node.maxRssMiB.median, 1)})`,
      `bun -e 0: ${cell(bun)} (${bun.cpuMs.median}, ${round(bun.maxRssMiB.median, 1)})`,
      `ADD: ${results.ratios.addVsNode}x node, ${results.ratios.addVsBun}x bun`,
    );
    row(
      `${CONCURRENT} concurrent ADD / DEL wall ms`,
      `${conc.contivk8s.addWallMs} / ${conc.contivk8s.delWallMs}`,
      `${conc.go.addWallMs} / ${conc.go.delWallMs}`,
      `${results.ratios.concurrentAddWallVsGo}x / ${results.ratios.concurrentDelWallVsGo}x`,
    );
    row(
      `${CONCURRENT} concurrent: failures, distinct IPs`,
      `${conc.contivk8s.failures}, ${conc.contivk8s.distinctIps}`,
      `${conc.go.failures}, ${conc.go.distinctIps}`,
      '',
    );
    row("netplugin's own ADD over its socket, ms", `${daemon.addOverSocketMs.median} (${daemon.addOverSocketMs.p90})`, '', '');
    row(
      `netplugin RSS over ${CYCLES} ADD/DEL cycles after ${daemon.warmup} warm-up`,
      `${round(daemon.baselineKiB / 1024, 1)} -> ${round(daemon.afterKiB / 1024, 1)} MiB (${daemon.growthPct}%, max ${round(daemon.maxKiB / 1024, 1)}), ` +
        `JS heap in use ${daemon.heapUsedMiB.baseline} -> ${daemon.heapUsedMiB.after} MiB, ${daemon.msPerCycle} ms/cycle`,
      '',
      '',
    );
    row(
      'IPAM allocation (pick + durable record), /16',
      `empty ${ipam.empty.median} ms, 60 000 in use ${ipam.inUse60k.median} ms`,
      '',
      `${results.ipamAllocationMs.ratio}x`,
    );
    say('\ntargets (reported, never enforced):');
    for (const [name, met, value] of targets) say(`  ${met ? 'met   ' : 'MISSED'}  ${name}: ${value}`);
    say(`\nresults: ${path.relative(ROOT, stem)}.json and .svg`);
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
