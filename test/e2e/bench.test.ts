// make bench keeps working: a small run of the real benchmark writes its JSON with every measurement.
// Timing is never asserted here (only `make bench` on a quiet machine is quoted).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../../testbed/sys';

describe('e2e: make bench (smoke run)', function () {
  this.timeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-bench-results-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every part side by side with the Go plugin and the bare runtimes, records results and draws the chart', () => {
    const env = {
      ...process.env,
      BENCH_RUNS: '3',
      BENCH_CONCURRENT: '10',
      BENCH_CHURN_S: '2',
      BENCH_CHURN_PARALLEL: '4',
      BENCH_CYCLES: '50',
      BENCH_RESULTS_DIR: dir,
    };
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/bench.js')], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| ADD wall ms \|/);
    const files = fs.readdirSync(dir).sort();
    expect(files.map((f) => f.replace(/^bench-[0-9T-]+Z/, ''))).to.deep.equal(['-churn.svg', '.json', '.svg']);
    const res = JSON.parse(fs.readFileSync(path.join(dir, files[1]), 'utf8'));
    for (const command of ['ADD', 'CHECK', 'DEL', 'VERSION']) {
      expect(res.single.contivk8s[command].failures, `contivk8s ${command}`).to.equal(0);
      expect(res.single.go[command].failures, `go ${command}`).to.equal(0);
      expect(res.single.contivk8s[command].cpuMs.median).to.be.greaterThan(0);
      expect(res.single.contivk8s[command].maxRssMiB.median).to.be.greaterThan(1);
    }
    expect(res.single.nodeBare.failures + res.single.bunBare.failures + res.single.meterFloor.failures).to.equal(0);
    // each exec's own peak: the meter's floor is a small static program, not the harness
    expect(res.single.meterFloor.maxRssMiB.median).to.be.below(4);
    expect(res.concurrent.contivk8s).to.include({ failures: 0, distinctIps: 10 });
    expect(res.concurrent.contivk8s.healthzProbes).to.be.greaterThan(0);
    expect(res.concurrent.go).to.include({ failures: 0, distinctIps: 10 });
    for (const who of ['contivk8s', 'go']) {
      expect(res.churn[who].failures, who).to.equal(0);
      expect(res.churn[who].pods, who).to.be.greaterThan(0);
    }
    expect(res.churn.contivk8s.daemon.eventLoopDelayMs.p99Max).to.be.a('number');
    expect(res.netplugin.cycles).to.equal(50);
    expect(res.netplugin.addOverSocketMs.n).to.equal(50);
    expect(Object.keys(res.netplugin.addPhasesMs)).to.deep.equal(['namespace', 'reserve', 'kernel', 'ready']);
    expect(res.targets).to.have.length(13);
    const svg = fs.readFileSync(path.join(dir, files[2]), 'utf8');
    expect(svg).to.match(/^<svg /);
    // every exec drawn: 3 runs x (2 plugins + 2 runtimes) x 2 panels
    expect(svg.match(/<circle /g)).to.have.length(3 * 4 * 2);
    expect(fs.readFileSync(path.join(dir, files[0]), 'utf8')).to.match(/^<svg /);
  });

  it('make bench-cluster: simulated nodes in etcd, convergence, idle cost and ADD latency are measured and recorded', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-bench-cluster-'));
    try {
      const env = {
        ...process.env,
        BENCH_CLUSTER_SIZES: '3,6',
        BENCH_CLUSTER_PODS: '10',
        BENCH_CLUSTER_IDLE_S: '2',
        BENCH_CLUSTER_CYCLES: '20',
        BENCH_RESULTS_DIR: out,
      };
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/bench-cluster.js')], { env, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const [file] = fs.readdirSync(out);
      const res = JSON.parse(fs.readFileSync(path.join(out, file), 'utf8'));
      expect(res.sizes.map((s: { nodes: number }) => s.nodes)).to.deep.equal([4, 7]);
      expect(res.sizes[1].ipKeys).to.equal(6 * 10 * 2);
      expect(res.sizes[1].routeConvergenceMs.samples).to.have.length(10);
      expect(res.addOverSocketMs.cluster.median).to.be.greaterThan(0);
      expect(res.targets).to.have.length(3);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
