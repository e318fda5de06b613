// The netplugin process, in the order it starts: its files made private, the socket path checked, the store
// opened (refused if unreadable), cluster membership, the bridge, the kernel compared with the store, the DEL
// queue applied, and only then the socket served. SIGTERM/SIGINT stop it within a bound.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { queuedDelFiles } from '../api/del-queue';
import type { Health } from '../api/wire';
import { bigIntToIpv6, intToIpv4 } from '../ip/ip';
import { createLogger, type Logger, type LogOptions } from '../log/logger';
import { VERSION } from '../version';
import type { ClusterOptions } from './cluster/member';
import { Datapath } from './datapath';
import { DelQueueApplier } from './del-queue';
import { Pool4, Pool6 } from './ipam';
import { Metrics } from './metrics';
import { createServer, DEFAULT_LIMITS, type ServerLimits } from './server';
import { NetpluginService } from './service';
import { Store } from './store';

export interface DaemonOptions {
  socket: string;
  stateDir: string;
  bridge: string;
  subnet: string;
  gateway?: string;
  subnet6?: string;
  /** Default: 1500, or in cluster mode the underlay's MTU less the VXLAN header. */
  mtu?: number;
  log: LogOptions;
  limits?: ServerLimits;
  /** Also answer GET /healthz over TCP here (kubelet's httpGet probes). */
  healthListen?: { host: string; port: number };
  /** Cluster mode (--store etcd): the pod subnets are blocks claimed in etcd, not `subnet` and `subnet6`. */
  cluster?: ClusterOptions & { vxlanDevice: string; vni: number; vxlanPort: number };
}

const DEFAULT_MTU = 1500;
/** How long requests in flight may run on after SIGTERM before their connections are closed. */
export const SHUTDOWN_GRACE_MS = 5_000;
/** How often queued DELs and deferred record removals are retried while serving. */
const RETRY_MS = 2_000;

/** True when something accepts connections on the socket: a live daemon whose socket must not be stolen. */
function socketIsLive(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Makes the socket's directory; only a dead socket is ever removed from the path, never a file of another kind. */
async function prepareSocket(socket: string, log: Logger): Promise<void> {
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socket);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new Error(`--socket ${socket} exists and is not a socket (${st.isFile() ? 'a regular file' : 'not a socket'}): refusing to remove it`);
  }
  if (await socketIsLive(socket)) throw new Error(`another netplugin is already serving ${socket}; refusing to take its socket`);
  log.warn('removing stale socket', { socket });
  fs.unlinkSync(socket);
}

/**
 * The socket's accept queue, as the kernel allows it (net.core.somaxconn caps it; 4096 on current kernels).
 * Node's default of 511 overflows under a burst of connections (a flood, or hundreds of execs at once), and a
 * unix socket whose queue is full refuses the next connect at once (EAGAIN): the adapter's ADD would fail
 * with code 11 although the daemon evicts idle connections as fast as it accepts them.
 */
const ACCEPT_BACKLOG = 65535;

function listen(server: http.Server, socket: string): Promise<void> {
  // umask makes the socket 0600 from its first instant, not after a chmod race
  const old = process.umask(0o177);
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socket, backlog: ACCEPT_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  }).finally(() => process.umask(old));
}

/**
 * The TCP health listener for kubelet's httpGet probes (calico-node and cilium-agent offer the same): GET
 * /healthz only, answered by the same event loop as the socket, so a wedged daemon fails its probe. A probe
 * that execs contivctl costs ~130 ms and ~60 MiB each time; this costs a request.
 */
function serveHealth(at: { host: string; port: number }, health: () => Health): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const ok = req.method === 'GET' && (req.url ?? '').split('?')[0] === '/healthz';
    const body = JSON.stringify(ok ? health() : { status: 'not found' });
    res.writeHead(ok ? 200 : 404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`--health-listen ${at.host}:${at.port}: ${err.message}`)));
    server.listen(at.port, at.host, () => resolve(server));
  });
}

/** A log file that predates us is made private like the rest (a new one is created 0600 under our umask). */
function privateLog(file: string | undefined): void {
  if (file && fs.existsSync(file)) fs.chmodSync(file, 0o600);
}

/** Joins the cluster (cluster mode only, loaded only then): blocks from etcd, the overlay, forwarding. */
async function joinCluster(c: NonNullable<DaemonOptions['cluster']>, store: Store, log: Logger, metrics: Metrics) {
  const { openSession } = await import('../etcd/connect.js');
  const { blocksOfNode, nodeKey } = await import('../etcd/layout.js');
  const { ClusterMember } = await import('./cluster/member.js');
  const { Overlay, VXLAN_OVERHEAD } = await import('./overlay.js');
  const overlay = new Overlay({ device: c.vxlanDevice, vni: c.vni, port: c.vxlanPort, nodeIp: c.nodeIp }, log, (err) =>
    log.error('rtnetlink socket error (overlay)', { error: err.message }),
  );
  const underlay = await overlay.underlay();
  // etcd is reached (TLS and all) before anything on the node is made
  const etcd = openSession(c, () => metrics.etcdRequests.inc());
  await etcd.call('reaching etcd', etcd.client.get(nodeKey(c.nodeName)).string());
  const vtepMac = await overlay.ensureDevice(underlay);
  const member = await ClusterMember.join(etcd, c, vtepMac, store, log);
  await overlay.assignVteps(blocksOfNode(member));
  // this node routes between its bridge and the overlay (only this network namespace's settings)
  fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  if (member.block6) fs.writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
  return {
    member,
    mtu: underlay.mtu - VXLAN_OVERHEAD,
    follow: () => member.follow(overlay),
    close: async () => {
      await member.close();
      overlay.close();
    },
  };
}

/** What the node side of the daemon is made of, once opened. */
interface Node {
  store: Store;
  metrics: Metrics;
  cluster?: Awaited<ReturnType<typeof joinCluster>>;
  datapath: Datapath;
  service: NetpluginService;
  queue: DelQueueApplier;
  health(): Health;
}

/** Opens what the daemon serves from: the store (refused if unreadable), cluster membership, the pools, the datapath. */
async function openNode(opts: DaemonOptions, log: Logger): Promise<Node> {
  const store = new Store(opts.stateDir);
  const metrics = new Metrics();
  const cluster = opts.cluster ? await joinCluster(opts.cluster, store, log, metrics) : undefined;
  const subnet = cluster?.member.block ?? opts.subnet;
  const subnet6 = cluster ? cluster.member.block6 : opts.subnet6;
  const mtu = opts.mtu ?? cluster?.mtu ?? DEFAULT_MTU;
  const pool4 = new Pool4(subnet, cluster ? undefined : opts.gateway);
  const pool6 = subnet6 ? new Pool6(subnet6) : undefined;
  const datapath = new Datapath(
    {
      bridge: opts.bridge,
      gateway4: intToIpv4(pool4.gateway),
      prefix4: pool4.cidr.prefix,
      ...(pool6 ? { gateway6: bigIntToIpv6(pool6.gateway), prefix6: pool6.cidr.prefix } : {}),
      mtu,
    },
    (err) => log.error('rtnetlink socket error', { error: err.message }),
  );
  const service = new NetpluginService({ store, kernel: datapath, pool4, pool6, claims: cluster?.member.claims, log, metrics });
  const health = (): Health => ({
    status: 'ok',
    version: VERSION,
    pid: process.pid,
    bridge: opts.bridge,
    subnet,
    gateway: intToIpv4(pool4.gateway),
    ...(pool6 ? { subnet6, gateway6: bigIntToIpv6(pool6.gateway) } : {}),
    mtu,
    stateDir: opts.stateDir,
    store: opts.cluster ? 'etcd' : 'embedded',
    ...(opts.cluster ? { node: opts.cluster.nodeName } : {}),
    // counted by name: a health probe reads no entry
    queuedDels: queuedDelFiles(opts.socket).length,
  });
  return { store, metrics, cluster, datapath, service, queue: new DelQueueApplier(opts.socket, service, log, metrics), health };
}

/**
 * Before the socket is served: the bridge, the kernel compared with the store (restart recovery), the DELs
 * queued while no netplugin answered (before any ADD can reuse their addresses), and the overlay's peers.
 */
async function recover(node: Node): Promise<void> {
  await node.datapath.ensureBridge();
  await node.service.reconcile();
  await node.queue.drain();
  await node.cluster?.follow();
}

/** Serves the socket (and /healthz over TCP if asked); returns how to stop serving. */
async function serve(node: Node, opts: DaemonOptions, log: Logger): Promise<{ stop(): Promise<void> }> {
  const { server, shutdown } = createServer(node.service, node.metrics, log, node.health, opts.limits ?? DEFAULT_LIMITS);
  await listen(server, opts.socket);
  const healthServer = opts.healthListen ? await serveHealth(opts.healthListen, node.health) : undefined;
  // what was queued while this daemon was starting, then every few seconds (a DEL that timed out is queued too)
  await node.queue.drain();
  const retry = setInterval(() => {
    node.service.finishDeferred();
    void node.queue.drain();
  }, RETRY_MS);
  return {
    async stop() {
      clearInterval(retry);
      healthServer?.close();
      await shutdown(SHUTDOWN_GRACE_MS);
      fs.rmSync(opts.socket, { force: true });
      await node.queue.idle();
    },
  };
}

/** After serving: the cluster left, then the store closed (its lock goes with it: a successor may start), the datapath last. */
async function closeNode(node: Node): Promise<void> {
  await node.cluster?.close();
  node.store.close();
  await node.datapath.close();
}

const signalled = () =>
  new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  // every file and directory this daemon creates is its own (0600/0700): container ids are not for everyone
  process.umask(0o077);
  const log = createLogger({ ...opts.log, component: 'netplugin' });
  privateLog(opts.log.file);
  log.info('netplugin starting', { version: VERSION, pid: process.pid, socket: opts.socket, stateDir: opts.stateDir });
  // A bug must leave its stack behind, and the process must not go on in an unknown state; 70 is sysexits'
  // EX_SOFTWARE, so a supervisor's log tells a crash from a refusal to start (1).
  process.on('uncaughtException', (err) => {
    process.stderr.write(`netplugin: fatal: ${err.stack ?? err}\n`);
    process.exit(70);
  });
  await prepareSocket(opts.socket, log);
  const node = await openNode(opts, log);
  await recover(node);
  const serving = await serve(node, opts, log);
  log.info('netplugin ready', { socket: opts.socket, ...node.health() });

  const signal = await signalled();
  log.info('stopping: no new connections; requests in flight finish or are closed', { signal, graceMs: SHUTDOWN_GRACE_MS });
  await serving.stop();
  await closeNode(node);
  log.info('stopped', { signal });
  await new Promise<void>((resolve) => log.on('finish', resolve).end());
}
