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
  readonly ipsInUse = new Gauge({ name: 'contiv_netplugin_ips_in_use', help: 'IPv4 addresses allocated', registers: [this.registry] });
  readonly etcdRequests = new Counter({
    name: 'contiv_netplugin_etcd_requests_total',
    help: 'Calls to etcd (cluster mode): claims, releases, listings, resyncs',
    registers: [this.registry],
  });

  constructor() {
    // process and V8 metrics (RSS, heap, event-loop lag): a long-running daemon's leaks show here first
    collectDefaultMetrics({ register: this.registry });
  }
}
