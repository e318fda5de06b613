// The netplugin's metrics (GET /metrics), in the Prometheus text format (prometheus.ts).
import { Counter, Gauge, Histogram, ProcessMetrics, Registry } from './prometheus';

export class Metrics {
  readonly registry = new Registry();
  readonly adds = new Counter('contiv_netplugin_adds_total', 'Successful AddPod requests', this.registry);
  readonly dels = new Counter('contiv_netplugin_dels_total', 'Successful DelPod requests', this.registry);
  readonly errors = new Counter('contiv_netplugin_errors_total', 'Failed requests by route and CNI error code', this.registry, { labelled: true });
  readonly addLatency = new Histogram(
    'contiv_netplugin_add_duration_seconds',
    'AddPod latency inside the daemon',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    this.registry,
  );
  readonly addPhases = new Histogram(
    'contiv_netplugin_add_phase_seconds',
    "AddPod's phases inside the daemon: namespace (open and verify), reserve (addresses and pending record), " +
      'kernel (veth, pod side; etcd claim beside it), ready (mark and commit)',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    this.registry,
  );
  readonly ipsInUse = new Gauge('contiv_netplugin_ips_in_use', 'IPv4 addresses allocated', this.registry);
  readonly adopted = new Counter(
    'contiv_netplugin_adopted_attachments_total',
    'Attachments whose record the store had lost, rebuilt at start from the ownership mark on their host veth',
    this.registry,
  );
  readonly foreignPorts = new Gauge(
    'contiv_netplugin_foreign_bridge_ports',
    'Links on the bridge without our ownership mark or record, left alone (found at start)',
    this.registry,
  );
  readonly deferredRemovals = new Gauge(
    'contiv_netplugin_deferred_record_removals',
    'Records whose removal the store refused (a full disk); their addresses stay held until it succeeds',
    this.registry,
  );
  readonly abandonedAdds = new Counter(
    'contiv_netplugin_abandoned_adds_total',
    'ADDs undone because the caller closed its connection before the answer',
    this.registry,
  );
  readonly queuedDels = new Counter(
    'contiv_netplugin_queued_dels_applied_total',
    'DELs the adapter queued while the netplugin was unreachable, applied by the netplugin',
    this.registry,
  );
  readonly etcdRequests = new Counter(
    'contiv_netplugin_etcd_requests_total',
    'Calls to etcd (cluster mode): claims, releases, listings, resyncs',
    this.registry,
  );

  // process and V8 metrics: RSS, heap, and the event loop's delay since the last scrape
  // (nodejs_eventloop_lag_max_seconds, nodejs_eventloop_lag_p99_seconds): a stalled loop shows there first
  readonly processMetrics = new ProcessMetrics(this.registry);

  /** Times an ADD's phases: each call observes the time since the previous one (or since the timer began). */
  phaseTimer(): (phase: 'namespace' | 'reserve' | 'kernel' | 'ready') => void {
    let last = process.hrtime.bigint();
    return (phase) => {
      const now = process.hrtime.bigint();
      this.addPhases.observe(Number(now - last) / 1e9, { phase });
      last = now;
    };
  }
}
