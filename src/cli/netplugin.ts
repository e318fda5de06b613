// bin/netplugin: flags per ../shared/interface.md, then the daemon in the foreground.
import * as os from 'node:os';
import { Command } from 'commander';
import { DEFAULT_SOCKET } from '../api/wire';
import { connectEtcd } from '../etcd/connect';
import { runDaemon } from '../netplugin/daemon';
import { etcdOptions, withEtcdFlags } from './etcd-flags';

function integer(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} ${v}: expected an integer from ${min} to ${max}`);
  return n;
}

const program = new Command('netplugin')
  .description('contiv-compatible netplugin: wires pods named by /proc/<pid>/ns/net onto a Linux bridge')
  .option('--socket <path>', 'unix socket to serve HTTP on', DEFAULT_SOCKET)
  .option('--state-dir <dir>', 'IPAM and endpoint records', '/var/lib/contiv')
  .option('--bridge <name>', 'Linux bridge for the host veth ends (created if missing)', 'contivbr0')
  .option('--subnet <cidr>', 'IPv4 pod subnet of this node (embedded store)', '10.244.0.0/16')
  .option('--gateway <ip>', 'gateway on the bridge (default: first host of --subnet)')
  .option('--subnet6 <cidr>', 'optional IPv6 pod subnet (dual stack)')
  .option('--mtu <n>', 'MTU of both veth ends (default: 1500; with --store etcd the underlay MTU less 50)', (v) => integer('--mtu', v, 576, 65535))
  .option('--log-file <path>', 'winston JSON lines (default: stderr)')
  .option('--log-level <level>', 'error, warn, info or debug', 'info')
  .option('--store <kind>', 'embedded (SQLite, one node) or etcd (cluster mode: blocks, IPs and nodes in etcd, VXLAN overlay)', 'embedded');

withEtcdFlags(program, false)
  .option('--node-name <name>', "cluster mode: this node's name in the registry", os.hostname())
  .option('--node-ip <ip>', "cluster mode: this node's underlay IP (VXLAN endpoint)")
  .option('--cluster-cidr <cidr>', "cluster mode: the pod network all nodes' blocks come from (--subnet is not used)", '10.244.0.0/16')
  .option('--block-prefix <n>', "cluster mode: prefix length of each node's block", (v) => integer('--block-prefix', v, 8, 28), 24)
  .option('--cluster-cidr6 <cidr>', 'cluster mode, dual stack: the IPv6 pod network, cut into per-node blocks (--subnet6 is not used)')
  .option('--block-prefix6 <n>', "cluster mode, dual stack: prefix length of each node's IPv6 block", (v) => integer('--block-prefix6', v, 64, 120), 64)
  .option(
    '--lease-ttl <seconds>',
    "cluster mode: TTL of the node's etcd lease; a dead node leaves the registry after it",
    (v) => integer('--lease-ttl', v, 2, 3600),
    15,
  )
  .option('--vxlan-device <name>', 'cluster mode: the VXLAN device', 'contivvxlan0')
  .option('--vxlan-id <vni>', 'cluster mode: VXLAN network identifier', (v) => integer('--vxlan-id', v, 1, 16777215), 1)
  .option('--vxlan-port <port>', 'cluster mode: VXLAN UDP port', (v) => integer('--vxlan-port', v, 1, 65535), 4789)
  .action(async (o) => {
    if (o.store !== 'embedded' && o.store !== 'etcd') throw new Error(`--store ${o.store}: expected embedded or etcd`);
    if (o.store === 'etcd' && (!o.etcdEndpoints || !o.nodeIp)) throw new Error('--store etcd needs --etcd-endpoints and --node-ip');
    const etcd = etcdOptions(o);
    // the connection rules (TLS, or --etcd-insecure) are checked before anything on the node changes
    if (o.store === 'etcd') connectEtcd(etcd).close();
    const cluster =
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
        : undefined;
    await runDaemon({
      socket: o.socket,
      stateDir: o.stateDir,
      bridge: o.bridge,
      subnet: o.subnet,
      gateway: o.gateway,
      subnet6: o.subnet6,
      mtu: o.mtu,
      logFile: o.logFile,
      logLevel: o.logLevel,
      cluster,
    });
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`netplugin: ${err.message}\n`);
  process.exit(1);
});
