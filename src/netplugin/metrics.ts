import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly adds = new Counter({ name: 'contiv_netplugin_adds_total', help: 'Successful AddPod requests', registers: [this.registry] });
  readonly dels = new Counter({ name: 'contiv_netplugin_dels_total', help: 'Successful DelPod requests', registers: [this.registry] });
  readonly errors = new Counter({
    name: 'contiv_netplugin_errors_total',
    help: 'Failed requests by route and CNI error code',
    labelNames: ['route', 'code'],
    registers: [this.registry],
  });
  readonly addLatency = new Histogram({
    name: 'contiv_netplugin_add_duration_seconds',
    help: 'AddPod latency inside the daemon',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly addPhases = new Histogram({
    name: 'contiv_netplugin_add_phase_seconds',
    help:
      "AddPod's phases inside the daemon: namespace (open and verify), reserve (addresses and pending record), " +
      'kernel (veth, pod side; etcd claim beside it), ready (mark and commit)',
    labelNames: ['phase'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [this.registry],
  });
  readonly ipsInUse = new Gauge({ name: 'contiv_netplugin_ips_in_use', help: 'IPv4 addresses allocated', registers: [this.registry] });
  readonly adopted = new Counter({
    name: 'contiv_netplugin_adopted_attachments_total',
    help: 'Attachments whose record the store had lost, rebuilt at start from the ownership mark on their host veth',
    registers: [this.registry],
  });
  readonly foreignPorts = new Gauge({
    name: 'contiv_netplugin_foreign_bridge_ports',
    help: 'Links on the bridge without our ownership mark or record, left alone (found at start)',
    registers: [this.registry],
  });
  readonly deferredRemovals = new Gauge({
    name: 'contiv_netplugin_deferred_record_removals',
    help: 'Records whose removal the store refused (a full disk); their addresses stay held until it succeeds',
    registers: [this.registry],
  });
  readonly abandonedAdds = new Counter({
    name: 'contiv_netplugin_abandoned_adds_total',
    help: 'ADDs undone because the caller closed its connection before the answer',
    registers: [this.registry],
  });
  readonly queuedDels = new Counter({
    name: 'contiv_netplugin_queued_dels_applied_total',
    help: 'DELs the adapter queued while the netplugin was unreachable, applied by the netplugin',
    registers: [this.registry],
  });
  readonly etcdRequests = new Counter({
    name: 'contiv_netplugin_etcd_requests_total',
    help: 'Calls to etcd (cluster mode): claims, releases, listings, resyncs',
    registers: [this.registry],
  });

  constructor() {
    // process and V8 metrics: RSS, heap, and the event loop's delay since the last scrape
    // (nodejs_eventloop_lag_max_seconds, nodejs_eventloop_lag_p99_seconds): a stalled loop shows there first
    collectDefaultMetrics({ register: this.registry });
  }

  /** Times an ADD's phases: each call observes the time since the previous one (or since the timer began). */
  phaseTimer(): (phase: 'namespace' | 'reserve' | 'kernel' | 'ready') => void {
    let last = process.hrtime.bigint();
    return (phase) => {
      const now = process.hrtime.bigint();
      this.addPhases.observe({ phase }, Number(now - last) / 1e9);
      last = now;
    };
  }
}
