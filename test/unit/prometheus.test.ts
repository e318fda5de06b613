import { expect } from 'chai';
import { Counter, Gauge, Histogram, ProcessMetrics, Registry } from '../../src/netplugin/prometheus';

describe('unit: the Prometheus exposition', () => {
  it('counters and gauges: HELP and TYPE, 0 before the first change, one series per label set, labels escaped', () => {
    const r = new Registry();
    const adds = new Counter('adds_total', 'Successful adds', r);
    const errors = new Counter('errors_total', 'Failures\nby route', r, { labelled: true });
    const inUse = new Gauge('in_use', 'Addresses held', r);
    expect(r.metrics()).to.equal(
      '# HELP adds_total Successful adds\n# TYPE adds_total counter\nadds_total 0\n' +
        '# HELP errors_total Failures\\nby route\n# TYPE errors_total counter\n' +
        '# HELP in_use Addresses held\n# TYPE in_use gauge\nin_use 0\n',
    );
    adds.inc();
    adds.inc({}, 2);
    errors.inc({ route: '/a"b', code: '6' });
    errors.inc({ route: '/a"b', code: '6' });
    errors.inc({ route: '/c', code: '7' });
    inUse.set(5);
    inUse.set(3);
    const text = r.metrics();
    expect(text).to.include('\nadds_total 3\n');
    expect(text).to.include('\nerrors_total{route="/a\\"b",code="6"} 2\nerrors_total{route="/c",code="7"} 1\n');
    expect(text).to.include('\nin_use 3\n');
  });

  it('histograms: cumulative buckets, +Inf, sum and count, per label set', () => {
    const r = new Registry();
    const h = new Histogram('phase_seconds', 'Phases', [0.001, 0.01], r);
    h.observe(0.0005, { phase: 'a' });
    h.observe(0.005, { phase: 'a' });
    h.observe(0.5, { phase: 'a' });
    h.observe(0.002, { phase: 'b' });
    const text = r.metrics();
    expect(text).to.include(
      'phase_seconds_bucket{phase="a",le="0.001"} 1\nphase_seconds_bucket{phase="a",le="0.01"} 2\nphase_seconds_bucket{phase="a",le="+Inf"} 3\n' +
        'phase_seconds_sum{phase="a"} 0.5055\nphase_seconds_count{phase="a"} 3\n',
    );
    expect(text).to.include('phase_seconds_bucket{phase="b",le="0.001"} 0\nphase_seconds_bucket{phase="b",le="0.01"} 1\n');
  });

  it("the process's series under prom-client's names; the event-loop window restarts at each scrape", async () => {
    const r = new Registry();
    new ProcessMetrics(r);
    r.metrics();
    const t0 = Date.now();
    while (Date.now() - t0 < 300); // the loop held for 300 ms
    await new Promise((resolve) => setTimeout(resolve, 30));
    const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const held = r.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'process_start_time_seconds']) {
      expect(value(held, name), name).to.be.above(0);
    }
    expect(value(held, 'nodejs_eventloop_lag_max_seconds')).to.be.above(0.25);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // a new window: the 300 ms are not in it (a loaded machine may still delay a timer, by far less)
    expect(value(r.metrics(), 'nodejs_eventloop_lag_max_seconds')).to.be.below(0.25);
  });
});
