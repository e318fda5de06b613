// make bench keeps working: a small run of the real benchmark writes its JSON with every measurement.
// Timing is never asserted here (only `make bench` on a quiet machine is quoted).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../support/sys';

describe('e2e: make bench (smoke run)', function () {
  this.timeout(300_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-bench-results-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every part side by side with the Go plugin and records results, with 0 failures and distinct IPs', () => {
    const env = { ...process.env, BENCH_RUNS: '3', BENCH_CONCURRENT: '10', BENCH_CYCLES: '50', BENCH_RESULTS_DIR: dir };
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/bench.js')], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| single ADD, median \(p90\) ms \|/);
    const [file] = fs.readdirSync(dir);
    const res = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    expect(res.single.contivk8s.failures).to.equal(0);
    expect(res.single.go.failures).to.equal(0);
    expect(res.concurrent.contivk8s).to.include({ failures: 0, distinctIps: 10 });
    expect(res.concurrent.go).to.include({ failures: 0, distinctIps: 10 });
    expect(res.netpluginRss.cycles).to.equal(50);
    expect(res.targets).to.have.length(7);
  });
});
