// The netplugin process: state, kernel, socket, and a clean stop on SIGTERM/SIGINT.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Health } from '../api/wire';
import { openSession } from '../etcd/connect';
import { blocksOfNode, nodeKey } from '../etcd/layout';
import { bigIntToIpv6, intToIpv4 } from '../ip/ip';
import { createLogger, type Logger } from '../log/logger';
import { ClusterMember, type ClusterOptions } from './cluster/member';
import { Datapath } from './datapath';
import { Pool4, Pool6 } from './ipam';
import { Metrics } from './metrics';
import { Overlay, underlayOf, VXLAN_OVERHEAD } from './overlay';
import { createServer } from './server';
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
  logFile?: string;
  logLevel: string;
  /** Cluster mode (--store etcd): the pod subnets are blocks claimed in etcd, not `subnet` and `subnet6`. */
  cluster?: ClusterOptions & { vxlanDevice: string; vni: number; vxlanPort: number };
}

const DEFAULT_MTU = 1500;

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

async function prepareSocket(socket: string, log: Logger): Promise<void> {
  const dir = path.dirname(socket);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!fs.existsSync(socket)) return;
  if (await socketIsLive(socket)) throw new Error(`another netplugin is already serving ${socket}; refusing to take its socket`);
  log.warn('removing stale socket', { socket });
  fs.unlinkSync(socket);
}

function listen(server: http.Server, socket: string): Promise<void> {
  // umask makes the socket 0600 from its first instant, not after a chmod race
  const old = process.umask(0o177);
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  }).finally(() => process.umask(old));
}

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const log = createLogger({ file: opts.logFile, level: opts.logLevel, component: 'netplugin' });
  // A bug must leave its stack behind; inside a native callback the addon would abort without one.
  process.on('uncaughtException', (err) => {
    process.stderr.write(`netplugin: fatal: ${err.stack ?? err}\n`);
    process.exit(70);
  });
  await prepareSocket(opts.socket, log);
  const store = new Store(opts.stateDir);
  const metrics = new Metrics();
  let subnet = opts.subnet;
  let subnet6 = opts.subnet6;
  let mtu = opts.mtu ?? DEFAULT_MTU;
  let cluster: ClusterMember | undefined;
  let followCluster: (() => Promise<void>) | undefined;
  if (opts.cluster) {
    const c = opts.cluster;
    const underlay = await underlayOf(c.nodeIp);
    // etcd is reached (TLS and all) before anything on the node is made
    const etcd = openSession(c, () => metrics.etcdRequests.inc());
    await etcd.call('reaching etcd', etcd.client.get(nodeKey(c.nodeName)).string());
    const overlay = new Overlay({ device: c.vxlanDevice, vni: c.vni, port: c.vxlanPort, nodeIp: c.nodeIp });
    const vtepMac = await overlay.ensureDevice(underlay);
    const member = await ClusterMember.join(etcd, c, vtepMac, store, log);
    cluster = member;
    subnet = member.block;
    subnet6 = member.block6;
    await overlay.assignVteps(blocksOfNode(member));
    mtu = opts.mtu ?? underlay.mtu - VXLAN_OVERHEAD;
    // this node routes between its bridge and the overlay (only this network namespace's settings)
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    if (subnet6) fs.writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
    followCluster = () => member.follow(overlay);
  }
  const pool4 = new Pool4(subnet, opts.cluster ? undefined : opts.gateway);
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
  const service = new NetpluginService({ store, kernel: datapath, pool4, pool6, claims: cluster?.claims, log, metrics });
  await datapath.ensureBridge();
  await service.reconcile();
  await followCluster?.();
  const health: Health = {
    status: 'ok',
    pid: process.pid,
    bridge: opts.bridge,
    subnet,
    gateway: intToIpv4(pool4.gateway),
    ...(pool6 ? { subnet6, gateway6: bigIntToIpv6(pool6.gateway) } : {}),
    mtu,
    stateDir: opts.stateDir,
    store: opts.cluster ? 'etcd' : 'embedded',
    ...(opts.cluster ? { node: opts.cluster.nodeName } : {}),
  };
  const server = createServer(service, metrics, log, health);
  await listen(server, opts.socket);
  log.info('netplugin ready', { socket: opts.socket, ...health });

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('stopping', { signal });
      server.close(() => resolve());
      server.closeIdleConnections();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  fs.rmSync(opts.socket, { force: true });
  await cluster?.close();
  store.close();
  datapath.close();
  await new Promise<void>((resolve) => log.on('finish', resolve).end());
}
