// bin/netplugin: flags per the external interface (docs/reference.md), then the daemon in the foreground.
// Every flag is parsed and checked as commander reads it, naming the flag, before anything on the node is
// touched (no socket dir, no state dir, no log file): a bad flag is a usage error (exit 2); a refusal to
// start is exit 1; a crash exit 70.
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_SOCKET } from '../api/routes';
import { connectEtcd } from '../etcd/connect';
import { isIPv4, isIPv6, parseAddress, parseCidr4, parseCidr6 } from '../ip/ip';
import { interfaceNameProblem } from '../linux/ifname';
import { LEVELS } from '../log/jsonl';
import { type DaemonOptions, runDaemon } from '../netplugin/daemon';
import { Pool4 } from '../netplugin/ipam';
import { DEFAULT_LIMITS } from '../netplugin/server';
import { VERSION } from '../version';
import { etcdOptions, withEtcdFlags } from './etcd-flags';

/** A flag's parser: its value checked, or commander's usage error naming the flag. */
const checked =
  <T>(parse: (v: string) => T) =>
  (v: string): T => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

const integer = (min: number, max: number) =>
  checked((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`expected an integer from ${min} to ${max}`);
    return n;
  });
const positive = checked((v) => {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error('expected a positive number');
  return n;
});
const absolute = checked((v) => {
  if (!path.isAbsolute(v)) throw new Error('expected an absolute path');
  return v;
});
const ifname = checked((v) => {
  const problem = interfaceNameProblem(v);
  if (problem) throw new Error(`an interface name that ${problem}`);
  return v;
});
const cidr4 = checked((v) => {
  parseCidr4(v);
  return v;
});
const cidr6 = checked((v) => {
  parseCidr6(v);
  return v;
});
/** A cluster's IPv6 pod network (its blocks' bounds are checked when they are cut). */
const clusterCidr6 = checked((v) => {
  const a = parseAddress(v);
  if (a.family !== 6 || a.prefix === undefined) throw new Error('expected an IPv6 CIDR');
  return v;
});
const ipv4 = checked((v) => {
  if (!isIPv4(v)) throw new Error('expected an IPv4 address');
  return v;
});
/** HOST:PORT of the optional TCP health listener (an IP literal; [::1]:PORT for IPv6). */
const listenAddress = checked((v) => {
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || !(isIPv4(m[1]) || isIPv6(m[1])) || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error('expected IP:PORT, such as 127.0.0.1:9099');
  return { host: m[1], port };
});

const program = new Command('netplugin')
  .description('contiv-compatible netplugin: wires pods named by /proc/<pid>/ns/net onto a Linux bridge')
  .version(VERSION, '--version', 'print the version')
  .exitOverride()
  .option('--socket <path>', 'unix socket to serve HTTP on', absolute, DEFAULT_SOCKET)
  .option('--state-dir <dir>', 'IPAM and endpoint records', absolute, '/var/lib/contiv')
  .option('--bridge <name>', 'Linux bridge for the host veth ends (created if missing)', ifname, 'contivbr0')
  .option('--subnet <cidr>', 'IPv4 pod subnet of this node (embedded store)', cidr4, '10.244.0.0/16')
  .option('--gateway <ip>', 'gateway on the bridge (default: first host of --subnet)', ipv4)
  .option('--subnet6 <cidr>', 'optional IPv6 pod subnet (dual stack)', cidr6)
  .option('--mtu <n>', 'MTU of both veth ends (default: 1500; with --store etcd the underlay MTU less 50)', integer(576, 65535))
  .option('--log-file <path>', 'winston JSON lines (default: stderr)', absolute)
  .addOption(new Option('--log-level <level>', 'log level').choices(Object.keys(LEVELS)).default('info'))
  .option('--log-max-size <MiB>', 'rotate the log file when it grows past this size', positive, 100)
  .option('--log-max-files <n>', 'rotated log files kept beside the current one', integer(1, 1000), 5)
  .option(
    '--max-connections <n>',
    'connections served at once; beyond it the oldest that has not sent a request is closed',
    integer(16, 65536),
    DEFAULT_LIMITS.maxConnections,
  )
  .option('--health-listen <ip:port>', "also answer GET /healthz over TCP here, for kubelet's httpGet probes (e.g. 127.0.0.1:9099)", listenAddress)
  .addOption(
    new Option('--store <kind>', 'embedded (SQLite, one node) or etcd (cluster mode: blocks, IPs and nodes in etcd, VXLAN overlay)')
      .choices(['embedded', 'etcd'])
      .default('embedded'),
  );

withEtcdFlags(program, false)
  .option('--node-name <name>', "cluster mode: this node's name in the registry", os.hostname())
  .option('--node-ip <ip>', "cluster mode: this node's underlay IP (VXLAN endpoint)", ipv4)
  .option('--cluster-cidr <cidr>', "cluster mode: the pod network all nodes' blocks come from (--subnet is not used)", cidr4, '10.244.0.0/16')
  .option('--block-prefix <n>', "cluster mode: prefix length of each node's block", integer(8, 28), 24)
  .option('--cluster-cidr6 <cidr>', 'cluster mode, dual stack: the IPv6 pod network, cut into per-node blocks (--subnet6 is not used)', clusterCidr6)
  .option('--block-prefix6 <n>', "cluster mode, dual stack: prefix length of each node's IPv6 block", integer(64, 120), 64)
  .option('--lease-ttl <seconds>', "cluster mode: TTL of the node's etcd lease; a dead node leaves the registry after it", integer(2, 3600), 15)
  .option('--vxlan-device <name>', 'cluster mode: the VXLAN device', ifname, 'contivvxlan0')
  .option('--vxlan-id <vni>', 'cluster mode: VXLAN network identifier', integer(1, 16777215), 1)
  .option('--vxlan-port <port>', 'cluster mode: VXLAN UDP port', integer(1, 65535), 4789)
  .action(async (o) => {
    const usage = (msg: string) => new CommanderError(2, 'netplugin.usage', msg);
    // the checks that need two flags at once, still before anything is touched
    if (o.gateway) {
      try {
        new Pool4(o.subnet, o.gateway);
      } catch (err) {
        throw usage(`--gateway ${o.gateway}: ${(err as Error).message}`);
      }
    }
    if (o.store === 'etcd' && (!o.etcdEndpoints || !o.nodeIp)) throw usage('--store etcd needs --etcd-endpoints and --node-ip');
    const etcd = etcdOptions(o);
    // the connection rules (TLS, or --etcd-insecure) are checked before anything on the node changes
    if (o.store === 'etcd') {
      try {
        connectEtcd(etcd).close();
      } catch (err) {
        throw usage((err as Error).message);
      }
    }
    const options: DaemonOptions = {
      socket: o.socket,
      stateDir: o.stateDir,
      bridge: o.bridge,
      subnet: o.subnet,
      gateway: o.gateway,
      subnet6: o.subnet6,
      mtu: o.mtu,
      log: { file: o.logFile, level: o.logLevel, maxSizeMiB: o.logMaxSize, maxFiles: o.logMaxFiles },
      limits: { ...DEFAULT_LIMITS, maxConnections: o.maxConnections },
      healthListen: o.healthListen,
      cluster:
        o.store === 'etcd'
          ? {
              ...etcd,
              nodeName: o.nodeName,
              nodeIp: o.nodeIp,
              clusterCidr: o.clusterCidr,
              blockPrefix: o.blockPrefix,
              clusterCidr6: o.clusterCidr6,
              blockPrefix6: o.blockPrefix6,
              leaseTtlSeconds: o.leaseTtl,
              vxlanDevice: o.vxlanDevice,
              vni: o.vxlanId,
              vxlanPort: o.vxlanPort,
            }
          : undefined,
    };
    await runDaemon(options);
  });

program.parseAsync(process.argv).catch((err: Error & { hint?: string; code?: string }) => {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    if (err.code === 'netplugin.usage') process.stderr.write(`netplugin: ${err.message}\n`);
    process.exit(2);
  }
  // a refusal to start leads with what to do, when it says
  process.stderr.write(`netplugin: ${err.hint ? `${err.hint}\n  ${err.message}` : err.message}\n`);
  process.exit(1);
});
