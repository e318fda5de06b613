// make bench: contivk8s + netplugin side by side with Debian's Go reference plugins (bridge + host-local)
// and the bare runtimes (`node -e 0`, `bun -e 0`, `/bin/true`), in one run, on the real kernel. Prints medians,
// p90s and ratios against the targets, writes results/bench-<time>.json and charts of the latency
// distributions (results/bench-<time>.svg for single execs, -churn.svg for the churn); never fails on
// timing. Children run without NODE_EXTRA_CA_CERTS (kubelet and containerd do not set it; it adds ~100 ms to
// each node start). Each exec's CPU and peak RSS are that child's own (scripts/rusage.c: fork, exec, wait4).
//   BENCH_RUNS (default 30)        single ADD/CHECK/DEL/VERSION runs per plugin
//   BENCH_CONCURRENT (100)         parallel ADDs, then parallel DELs (/healthz polled during the DELs)
//   BENCH_CHURN_S (60)             ADD+DEL cycles for this long, per plugin ...
//   BENCH_CHURN_PARALLEL (32)      ... this many at once
//   BENCH_CYCLES (2000)            netplugin ADD/DEL cycles over its socket: its own ADD and its phases, its RSS
//                                  (10000 for the full run)
//   BENCH_RESULTS_DIR              where the JSON and the SVGs go (default: results/)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { axiosClient } from '../src/api/axios-transport';
import { Pool4 } from '../src/netplugin/ipam';
import { Store } from '../src/netplugin/store';
import { CLEAN_PATH, cniEnv, runAdapter } from '../testbed/adapter';
import { TestNetplugin } from '../testbed/netplugin';
import { BIN, namedNetns, processNetns, ROOT, type TestNetns, uniq } from '../testbed/sys';
import { latencyChart } from './bench-chart';
import { metric, round, type Stats, say, stats } from './bench-stats';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 100);
const CHURN_S = Number(process.env.BENCH_CHURN_S ?? 60);
const CHURN_PARALLEL = Number(process.env.BENCH_CHURN_PARALLEL ?? 32);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 2000);
const GO_PLUGINS = '/usr/lib/cni';
const BUN = path.join(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun');
const COMMANDS = ['ADD', 'CHECK', 'DEL', 'VERSION'] as const;

interface Plugin {
  name: string;
  exec: string;
  conf: Record<string, unknown>;
}

/** One exec as the meter saw it: wall (fork to reap), CPU (user + sys) and peak RSS of that child alone. */
interface ExecSample {
  wallMs: number;
  cpuMs: number;
  maxRssKiB: number;
  ok: boolean;
}
type ExecSamples = Record<string, Record<string, ExecSample[]>>;

const METER_SOURCE = path.join(ROOT, 'scripts/rusage.c');
const METER = path.join(ROOT, 'dist/scripts/rusage');

/** The exec meter, compiled (static, so its own footprint is a few hundred KiB) when missing or stale. */
function meter(): string {
  if (!fs.existsSync(METER) || fs.statSync(METER).mtimeMs < fs.statSync(METER_SOURCE).mtimeMs) {
    execFileSync('cc', ['-O2', '-static', '-o', METER, METER_SOURCE]);
  }
  return METER;
}

/** One exec through the meter; its stdout, and the meter's reading of it. */
function measured(argv: string[], env: Record<string, string>, stdin = ''): { sample: ExecSample; stdout: string } {
  const out = path.join(os.tmpdir(), `ctv-rusage-${process.pid}.json`);
  const r = spawnSync(meter(), [out, ...argv], { env, input: stdin, encoding: 'utf8', maxBuffer: 16 << 20 });
  const m = JSON.parse(fs.readFileSync(out, 'utf8')) as { wallMs: number; cpuMs: number; maxRssKiB: number; status: number };
  fs.rmSync(out, { force: true });
  return { sample: { wallMs: m.wallMs, cpuMs: m.cpuMs, maxRssKiB: m.maxRssKiB, ok: m.status === 0 && r.status === 0 }, stdout: r.stdout };
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
const newNetns = (): TestNetns => namedNetns(`cni-${randomUUID()}`);

/**
 * Each plugin's ADD, CHECK, DEL and VERSION in a fresh namespace, and the bare runtimes, interleaved round by
 * round so the machine's noise falls on all alike; every exec through the meter.
 */
function single(plugins: Plugin[]): ExecSamples {
  const samples: ExecSamples = {};
  const record = (who: string, what: string, s: ExecSample) => {
    samples[who] ??= {};
    samples[who][what] ??= [];
    samples[who][what].push(s);
  };
  const bare = [
    { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    { name: 'bun -e 0', argv: [BUN, '-e', '0'] },
    // the meter's own floor: what any exec reads at least
    { name: '/bin/true', argv: ['/bin/true'] },
  ];
  const extra = { CNI_PATH: GO_PLUGINS, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=single' };
  for (let i = 0; i < RUNS; i++) {
    for (const p of plugins) {
      const ns = newNetns();
      try {
        const env = (command: string) => ({ PATH: CLEAN_PATH, ...cniEnv(command, `bench-${i}`, ns.path, extra) });
        const conf = JSON.stringify(p.conf);
        const add = measured([p.exec], env('ADD'), conf);
        record(p.name, 'ADD', add.sample);
        let prevResult: unknown = {};
        try {
          prevResult = JSON.parse(add.stdout);
        } catch {
          /* a failed ADD: its CHECK fails too, and is counted */
        }
        record(p.name, 'CHECK', measured([p.exec], env('CHECK'), JSON.stringify({ ...p.conf, prevResult })).sample);
        record(p.name, 'DEL', measured([p.exec], env('DEL'), conf).sample);
        record(p.name, 'VERSION', measured([p.exec], env('VERSION'), conf).sample);
      } finally {
        ns.remove();
      }
    }
    for (const b of bare) record(b.name, 'exec', measured(b.argv, { PATH: CLEAN_PATH }).sample);
  }
  return samples;
}

/** The /healthz prober (scripts/healthz-probe.ts) in its own process; stop() ends it and returns its reading. */
function startHealthzProbe(socket: string): { stop(): Promise<{ worstMs: number; probes: number }> } {
  const child = spawn(process.execPath, [path.join(__dirname, 'healthz-probe.js'), socket], {
    env: { PATH: CLEAN_PATH },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    async stop() {
      child.stdin.end();
      await exited;
      return JSON.parse(out) as { worstMs: number; probes: number };
    },
  };
}

async function concurrent(
  p: Plugin,
  socket?: string,
): Promise<{
  addWallMs: number;
  delWallMs: number;
  failures: number;
  distinctIps: number;
  healthzWorstMs?: number;
  healthzProbes?: number;
  delLagMaxMs?: number;
}> {
  const nss = Array.from({ length: CONCURRENT }, newNetns);
  try {
    let t0 = process.hrtime.bigint();
    const adds = await Promise.all(nss.map((ns, i) => runAdapter(pluginEnv('ADD', `conc-${i}`, ns.path), p.conf, p.exec)));
    const addWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    t0 = process.hrtime.bigint();
    // while the DELs run, /healthz is asked again as soon as it answers (from a process of its own): its worst
    // answer is how long the daemon stalls; the daemon's own event-loop delay over the DELs is read beside it
    const client = socket ? axiosClient(socket, 30_000) : undefined;
    await client?.metrics(); // the scrape resets the daemon's delay window: the next one covers the DELs alone
    const prober = socket ? startHealthzProbe(socket) : undefined;
    const dels = await Promise.all(nss.map((ns, i) => runAdapter(pluginEnv('DEL', `conc-${i}`, ns.path), p.conf, p.exec)));
    const delWallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const probed = await prober?.stop();
    const delLagMaxMs = client ? round(metric(await client.metrics(), 'nodejs_eventloop_lag_max_seconds') * 1000) : undefined;
    const ips = adds.filter((a) => a.status === 0).map((a) => a.json.ips?.[0]?.address.split('/')[0]);
    return {
      addWallMs: round(addWallMs),
      delWallMs: round(delWallMs),
      failures: [...adds, ...dels].filter((r) => r.status !== 0).length,
      distinctIps: new Set(ips).size,
      ...(probed ? { healthzWorstMs: round(probed.worstMs), healthzProbes: probed.probes, delLagMaxMs } : {}),
    };
  } finally {
    for (const ns of nss) ns.remove();
  }
}

/**
 * Churn: CHURN_PARALLEL runtimes each doing ADD then DEL of a new container in its own namespace, over and over
 * for CHURN_S seconds. For the netplugin, its RSS and event-loop delay (the p99 and max of each scrape's window)
 * are sampled every second.
 */
async function churn(p: Plugin, np?: TestNetplugin) {
  const nss = Array.from({ length: CHURN_PARALLEL }, newNetns);
  const addMs: number[] = [];
  const delMs: number[] = [];
  let failures = 0;
  const lagP99Ms: number[] = [];
  const lagMaxMs: number[] = [];
  const rssMiB: number[] = [];
  const client = np && axiosClient(np.socket, 30_000);
  const sample = async () => {
    if (!np || !client) return;
    const m = await client.metrics();
    lagP99Ms.push(round(metric(m, 'nodejs_eventloop_lag_p99_seconds') * 1000));
    lagMaxMs.push(round(metric(m, 'nodejs_eventloop_lag_max_seconds') * 1000));
    rssMiB.push(round(vmRssKiB(np.pid!) / 1024, 1));
  };
  try {
    await sample(); // the scrape resets the window: what follows is the churn's alone
    lagP99Ms.length = 0;
    lagMaxMs.length = 0;
    const sampler = setInterval(() => void sample(), 1000);
    const t0 = Date.now();
    const deadline = t0 + CHURN_S * 1000;
    await Promise.all(
      nss.map(async (ns, w) => {
        for (let i = 0; Date.now() < deadline; i++) {
          const id = `churn-${w}-${i}`;
          let t = process.hrtime.bigint();
          const add = await runAdapter(pluginEnv('ADD', id, ns.path), p.conf, p.exec);
          addMs.push(Number(process.hrtime.bigint() - t) / 1e6);
          t = process.hrtime.bigint();
          const del = await runAdapter(pluginEnv('DEL', id, ns.path), p.conf, p.exec);
          delMs.push(Number(process.hrtime.bigint() - t) / 1e6);
          if (add.status !== 0 || del.status !== 0) failures++;
        }
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    await sample();
    return {
      seconds: round(seconds, 1),
      parallel: CHURN_PARALLEL,
      pods: addMs.length,
      podsPerSecond: round(addMs.length / seconds, 1),
      failures,
      addMs: stats(addMs),
      delMs: stats(delMs),
      addSamples: addMs.map((x) => round(x)),
      delSamples: delMs.map((x) => round(x)),
      ...(np
        ? {
            daemon: {
              rssMiB: { max: Math.max(...rssMiB), last: rssMiB[rssMiB.length - 1] },
              eventLoopDelayMs: { p99Max: Math.max(...lagP99Ms), max: Math.max(...lagMaxMs) },
            },
          }
        : {}),
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
  /** Mean time of each of AddPod's phases inside the daemon over the measured cycles (its phase histogram). */
  addPhasesMs: Record<string, number>;
}> {
  const pod = await processNetns();
  const client = axiosClient(np.socket, 30_000);
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
    const phases = ['namespace', 'reserve', 'kernel', 'ready'] as const;
    const phaseTotals = (m: string) =>
      Object.fromEntries(
        phases.map((ph) => [
          ph,
          {
            sum: metric(m, `contiv_netplugin_add_phase_seconds_sum\\{phase="${ph}"\\}`),
            count: metric(m, `contiv_netplugin_add_phase_seconds_count\\{phase="${ph}"\\}`),
          },
        ]),
      );
    const phasesBefore = phaseTotals(await client.metrics());
    let maxKiB = baselineKiB;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CYCLES; i++) {
      await cycle(warmup + i);
      if (i % 500 === 0) maxKiB = Math.max(maxKiB, vmRssKiB(np.pid!));
    }
    const msPerCycle = Number(process.hrtime.bigint() - t0) / 1e6 / CYCLES;
    const afterKiB = vmRssKiB(np.pid!);
    const phasesAfter = phaseTotals(await client.metrics());
    const addPhasesMs = Object.fromEntries(
      phases.map((ph) => [ph, round(((phasesAfter[ph].sum - phasesBefore[ph].sum) / (phasesAfter[ph].count - phasesBefore[ph].count)) * 1000, 3)]),
    );
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
      addPhasesMs,
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
      origin: 'add' as const,
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
    say(`single ADD/CHECK/DEL/VERSION: ${RUNS} runs each, interleaved with node -e 0, bun -e 0 and /bin/true ...`);
    const samples = single([plugins.contivk8s, plugins.go]);
    const per = (who: string) => Object.fromEntries(Object.entries(samples[who]).map(([what, xs]) => [what, execStats(xs)]));
    const ours = per(plugins.contivk8s.name);
    const go = per(plugins.go.name);
    const node = per('node -e 0').exec;
    const bun = per('bun -e 0').exec;
    const floor = per('/bin/true').exec;
    say(`${CONCURRENT} concurrent ADDs then DELs (/healthz polled during the DELs) ...`);
    const conc = { contivk8s: await concurrent(plugins.contivk8s, np.socket), go: await concurrent(plugins.go) };
    say(`churn: ADD+DEL cycles, ${CHURN_PARALLEL} at once for ${CHURN_S} s, each plugin ...`);
    const churned = { contivk8s: await churn(plugins.contivk8s, np), go: await churn(plugins.go) };
    say(`netplugin over its socket: ${CYCLES} ADD/DEL cycles ...`);
    const daemon = await daemonCycles(np);
    say('IPAM allocation, /16 ...');
    const ipam = { empty: ipamAllocation(0), inUse60k: ipamAllocation(60_000) };

    const ratio = (a: number, b: number) => round(a / b);
    const { addSamples: ourChurnAdds, delSamples: ourChurnDels, ...ourChurn } = churned.contivk8s;
    const { addSamples: goChurnAdds, delSamples: goChurnDels, ...goChurn } = churned.go;
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
      command:
        `make bench (BENCH_RUNS=${RUNS} BENCH_CONCURRENT=${CONCURRENT} BENCH_CHURN_S=${CHURN_S} ` +
        `BENCH_CHURN_PARALLEL=${CHURN_PARALLEL} BENCH_CYCLES=${CYCLES})`,
      unit:
        'per exec: wall ms from fork to reap, CPU ms = user + sys, peak RSS MiB, each of that child alone (scripts/rusage.c); ' +
        'concurrent and churn: wall ms seen by the harness',
      single: { contivk8s: ours, go, nodeBare: node, bunBare: bun, meterFloor: floor },
      samples,
      ratios: {
        addVsGo: ratio(ours.ADD.wallMs.median, go.ADD.wallMs.median),
        addVsNode: ratio(ours.ADD.wallMs.median, node.wallMs.median),
        addVsBun: ratio(ours.ADD.wallMs.median, bun.wallMs.median),
        delVsGo: ratio(ours.DEL.wallMs.median, go.DEL.wallMs.median),
        checkVsGo: ratio(ours.CHECK.wallMs.median, go.CHECK.wallMs.median),
        versionVsGo: ratio(ours.VERSION.wallMs.median, go.VERSION.wallMs.median),
        addCpuVsGo: ratio(ours.ADD.cpuMs.median, go.ADD.cpuMs.median),
        concurrentAddWallVsGo: ratio(conc.contivk8s.addWallMs, conc.go.addWallMs),
        concurrentDelWallVsGo: ratio(conc.contivk8s.delWallMs, conc.go.delWallMs),
        churnPodsPerSecondVsGo: ratio(churned.contivk8s.podsPerSecond, churned.go.podsPerSecond),
      },
      concurrent: { n: CONCURRENT, ...conc },
      churn: { contivk8s: ourChurn, go: goChurn, samples: { contivk8s: { ADD: ourChurnAdds, DEL: ourChurnDels }, go: { ADD: goChurnAdds, DEL: goChurnDels } } },
      netplugin: daemon,
      ipamAllocationMs: { ...ipam, ratio: round(ipam.inUse60k.median / ipam.empty.median) },
    };
    const lag = ourChurn.daemon?.eventLoopDelayMs.p99Max ?? Number.NaN;
    const targets = [
      ['single ADD <= 1.3x Go ADD', results.ratios.addVsGo <= 1.3, `${results.ratios.addVsGo}x`],
      ['single DEL <= 1.2x Go DEL', results.ratios.delVsGo <= 1.2, `${results.ratios.delVsGo}x`],
      ['CPU per ADD exec <= 1.2x Go', results.ratios.addCpuVsGo <= 1.2, `${ours.ADD.cpuMs.median} vs ${go.ADD.cpuMs.median} ms: ${results.ratios.addCpuVsGo}x`],
      ['peak RSS per ADD exec <= 30 MiB', ours.ADD.maxRssMiB.median <= 30, `${round(ours.ADD.maxRssMiB.median, 1)} MiB`],
      [`${CONCURRENT} concurrent ADD wall <= 1.3x Go`, results.ratios.concurrentAddWallVsGo <= 1.3, `${results.ratios.concurrentAddWallVsGo}x`],
      [`${CONCURRENT} concurrent DEL wall <= 1.5x Go`, results.ratios.concurrentDelWallVsGo <= 1.5, `${results.ratios.concurrentDelWallVsGo}x`],
      [
        `${CONCURRENT} concurrent: 0 failures, ${CONCURRENT} distinct IPs`,
        conc.contivk8s.failures === 0 && conc.contivk8s.distinctIps === CONCURRENT,
        `${conc.contivk8s.failures} failures, ${conc.contivk8s.distinctIps} distinct IPs`,
      ],
      [
        `/healthz worst answer during the ${CONCURRENT} DELs <= 50 ms`,
        (conc.contivk8s.healthzWorstMs ?? Infinity) <= 50,
        `${conc.contivk8s.healthzWorstMs} ms`,
      ],
      ['event-loop delay p99 under churn <= 20 ms', lag <= 20, `${lag} ms (worst window)`],
      ["the netplugin's own ADD over its socket <= 1.5 ms", daemon.addOverSocketMs.median <= 1.5, `${daemon.addOverSocketMs.median} ms`],
      [
        'churn pods/s >= Go',
        results.ratios.churnPodsPerSecondVsGo >= 1,
        `${churned.contivk8s.podsPerSecond} vs ${churned.go.podsPerSecond}: ${results.ratios.churnPodsPerSecondVsGo}x`,
      ],
      [`netplugin RSS after ${CYCLES} cycles <= 80 MiB`, daemon.afterKiB / 1024 <= 80, `${round(daemon.afterKiB / 1024, 1)} MiB`],
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
    const churnPanel = (command: 'ADD' | 'DEL', ours: number[], theirs: number[]) => ({
      title: `${command} under churn`,
      series: [
        { label: 'contivk8s', samples: ours, color: '#1f77b4' },
        { label: 'Go bridge+host-local', samples: theirs, color: '#2ca02c' },
      ],
    });
    fs.writeFileSync(
      `${stem}-churn.svg`,
      latencyChart(`make bench ${started.toISOString()}: churn, ${CHURN_PARALLEL} at once for ${CHURN_S} s`, [
        churnPanel('ADD', ourChurnAdds, goChurnAdds),
        churnPanel('DEL', ourChurnDels, goChurnDels),
      ]),
    );

    const cell = (e: ExecStats) => `${e.wallMs.median} (${e.wallMs.p90})`;
    const row = (...cells: (string | number)[]) => say(`| ${cells.join(' | ')} |`);
    say();
    row('per exec, median (p90)', 'contivk8s', 'Go bridge+host-local', 'ratio');
    row('---', '---', '---', '---');
    for (const c of COMMANDS) row(`${c} wall ms`, cell(ours[c]), cell(go[c]), `${ratio(ours[c].wallMs.median, go[c].wallMs.median)}x`);
    row(
      'ADD CPU (user+sys) ms',
      `${ours.ADD.cpuMs.median} (${ours.ADD.cpuMs.p90})`,
      `${go.ADD.cpuMs.median} (${go.ADD.cpuMs.p90})`,
      `${results.ratios.addCpuVsGo}x`,
    );
    row('ADD peak RSS MiB', round(ours.ADD.maxRssMiB.median, 1), round(go.ADD.maxRssMiB.median, 1), `floor (/bin/true): ${round(floor.maxRssMiB.median, 1)}`);
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
      `${CONCURRENT} concurrent: failures, distinct IPs; /healthz worst, loop delay max during the DELs`,
      `${conc.contivk8s.failures}, ${conc.contivk8s.distinctIps}; ` +
        `${conc.contivk8s.healthzWorstMs} ms (${conc.contivk8s.healthzProbes} probes), ${conc.contivk8s.delLagMaxMs} ms`,
      `${conc.go.failures}, ${conc.go.distinctIps}`,
      '',
    );
    row(
      `churn (${CHURN_PARALLEL} at once, ${CHURN_S} s): pods/s, ADD p50/p99 ms, DEL p50/p99 ms, failures`,
      `${ourChurn.podsPerSecond}, ${ourChurn.addMs.median}/${ourChurn.addMs.p99}, ${ourChurn.delMs.median}/${ourChurn.delMs.p99}, ${ourChurn.failures}`,
      `${goChurn.podsPerSecond}, ${goChurn.addMs.median}/${goChurn.addMs.p99}, ${goChurn.delMs.median}/${goChurn.delMs.p99}, ${goChurn.failures}`,
      `${results.ratios.churnPodsPerSecondVsGo}x pods/s`,
    );
    row(
      'netplugin under churn: RSS max MiB, event-loop delay p99 (worst window) / max ms',
      `${ourChurn.daemon?.rssMiB.max}, ${ourChurn.daemon?.eventLoopDelayMs.p99Max} / ${ourChurn.daemon?.eventLoopDelayMs.max}`,
      '',
      '',
    );
    row(
      "netplugin's own ADD over its socket, ms; its phases, mean ms",
      `${daemon.addOverSocketMs.median} (${daemon.addOverSocketMs.p90}); ${Object.entries(daemon.addPhasesMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      '',
      '',
    );
    row(
      `netplugin RSS over ${CYCLES} ADD/DEL cycles after ${daemon.warmup} warm-up`,
      `${round(daemon.baselineKiB / 1024, 1)} -> ${round(daemon.afterKiB / 1024, 1)} MiB (${daemon.growthPct}%, max ${round(daemon.maxKiB / 1024, 1)}), ` +
        `JS heap in use ${daemon.heapUsedMiB.baseline} -> ${daemon.heapUsedMiB.after} MiB, ${daemon.msPerCycle} ms/cycle`,
      '',
      '',
    );
    row(
      'IPAM allocation (pick + record), /16',
      `empty ${ipam.empty.median} ms, 60 000 in use ${ipam.inUse60k.median} ms`,
      '',
      `${results.ipamAllocationMs.ratio}x`,
    );
    say('\ntargets (reported, never enforced):');
    for (const [name, met, value] of targets) say(`  ${met ? 'met   ' : 'MISSED'}  ${name}: ${value}`);
    say(`\nresults: ${path.relative(ROOT, stem)}.json, .svg and -churn.svg`);
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
