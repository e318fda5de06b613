// The Prometheus text format (0.0.4) for the netplugin's metrics: counters, gauges and histograms with
// labels, and the process's own (CPU, RSS, heap, event-loop delay). Small on purpose: prom-client and the
// OpenTelemetry API it loads were ~16 MiB of the daemon's resident memory for these few series.

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const labelText = (labels: Labels) => {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return pairs.length ? `{${pairs.join(',')}}` : '';
};
const num = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

interface Metric {
  render(): string;
}

/** A family of series, one per label set: what counters and gauges share. */
abstract class Family implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly type: 'counter' | 'gauge',
    registry: Registry,
    private readonly labelled: boolean,
  ) {
    registry.register(this);
  }

  protected entry(labels: Labels) {
    const key = labelText(labels);
    const found = this.series.get(key);
    if (found) return found;
    const made = { labels, value: 0 };
    this.series.set(key, made);
    return made;
  }

  render(): string {
    // a family without labels shows 0 before its first change; one with labels, no series until one is made
    const series = this.series.size || this.labelled ? [...this.series.values()] : [{ labels: {}, value: 0 }];
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...series.map((s) => `${this.name}${labelText(s.labels)} ${num(s.value)}`),
    ].join('\n');
  }
}

export class Counter extends Family {
  constructor(name: string, help: string, registry: Registry, opts: { labelled?: boolean } = {}) {
    super(name, help, 'counter', registry, opts.labelled ?? false);
  }

  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels).value += by;
  }
}

export class Gauge extends Family {
  constructor(name: string, help: string, registry: Registry) {
    super(name, help, 'gauge', registry, false);
  }

  set(value: number, labels: Labels = {}): void {
    this.entry(labels).value = value;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly buckets: number[],
    registry: Registry,
  ) {
    registry.register(this);
  }

  observe(seconds: number, labels: Labels = {}): void {
    const key = labelText(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.series.set(key, s);
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]) s.counts[i]++;
    s.sum += seconds;
    s.count++;
  }

  /** Starts timing; the returned function observes the seconds since. */
  startTimer(labels: Labels = {}): () => void {
    const t0 = process.hrtime.bigint();
    return () => this.observe(Number(process.hrtime.bigint() - t0) / 1e9, labels);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      for (const [i, b] of this.buckets.entries()) lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(b) })} ${s.counts[i]}`);
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`, `${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly families: Metric[] = [];

  register(m: Metric): void {
    this.families.push(m);
  }

  /** The exposition: every family, HELP and TYPE lines first. */
  metrics(): string {
    return `${this.families.map((m) => m.render()).join('\n')}\n`;
  }
}

/**
 * How late the event loop runs a timer due every RESOLUTION_MS, over a window: max exactly, percentiles at
 * 1 ms resolution (counts per ms up to 10 s). perf_hooks' monitorEventLoopDelay is not used: on this Node it
 * reports ~its resolution even across a loop held for 200 ms.
 */
class LoopDelay {
  private static readonly RESOLUTION_MS = 10;
  private readonly counts = new Uint32Array(10_001);
  private total = 0;
  private maxMs = 0;
  private sumMs = 0;
  private last = process.hrtime.bigint();

  constructor() {
    setInterval(() => {
      const now = process.hrtime.bigint();
      const lateMs = Math.max(0, Number(now - this.last) / 1e6 - LoopDelay.RESOLUTION_MS);
      this.last = now;
      this.counts[Math.min(this.counts.length - 1, Math.floor(lateMs))]++;
      this.total++;
      this.sumMs += lateMs;
      this.maxMs = Math.max(this.maxMs, lateMs);
    }, LoopDelay.RESOLUTION_MS).unref();
  }

  /** The window's max, mean and p50/p99 in seconds; then a new window begins. */
  take(): { max: number; mean: number; p50: number; p99: number } {
    const percentile = (q: number) => {
      let seen = 0;
      for (let ms = 0; ms < this.counts.length; ms++) {
        seen += this.counts[ms];
        if (seen >= q * this.total) return Math.min(ms + 1, this.maxMs);
      }
      return this.maxMs;
    };
    const out = this.total
      ? { max: this.maxMs / 1e3, mean: this.sumMs / this.total / 1e3, p50: percentile(0.5) / 1e3, p99: percentile(0.99) / 1e3 }
      : { max: 0, mean: 0, p50: 0, p99: 0 };
    this.counts.fill(0);
    this.total = 0;
    this.sumMs = 0;
    this.maxMs = 0;
    return out;
  }
}

/**
 * The process's own series, with prom-client's names (dashboards keep working): CPU, RSS, start time, the V8
 * heap, and the event loop's delay over the window since the previous scrape (max, p50, p99, mean): a loop
 * held by synchronous work shows there first.
 */
export class ProcessMetrics implements Metric {
  private readonly started = Date.now() / 1000;
  private readonly delay = new LoopDelay();

  constructor(registry: Registry) {
    registry.register(this);
  }

  render(): string {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    // the window restarts at each scrape
    const d = this.delay.take();
    const series: [string, 'counter' | 'gauge', string, number][] = [
      ['process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', cpu.user / 1e6],
      ['process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', cpu.system / 1e6],
      ['process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', (cpu.user + cpu.system) / 1e6],
      ['process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', Math.round(this.started)],
      ['process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', mem.rss],
      ['nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', mem.heapTotal],
      ['nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', mem.heapUsed],
      ['nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', mem.external],
      ['nodejs_eventloop_lag_max_seconds', 'gauge', 'The maximum event loop delay since the last scrape.', d.max],
      ['nodejs_eventloop_lag_mean_seconds', 'gauge', 'The mean event loop delay since the last scrape.', d.mean],
      ['nodejs_eventloop_lag_p50_seconds', 'gauge', 'The 50th percentile of event loop delays since the last scrape.', d.p50],
      ['nodejs_eventloop_lag_p99_seconds', 'gauge', 'The 99th percentile of event loop delays since the last scrape.', d.p99],
    ];
    return series.map(([name, type, help, v]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${num(v)}`).join('\n');
  }
}
