// bin/contivctl: the operator CLI.
import * as path from 'node:path';
import { Command } from 'commander';
import { nodeClient } from '../api/axios-transport';
import { DEFAULT_SOCKET } from '../api/wire';
import { doctor } from '../contivctl/doctor';
import { installCni } from '../contivctl/install';
import { type Allocations, analyze, fix, type Leak, snapshot } from '../contivctl/leaks';
import { type EtcdFlags, etcdOptions, withEtcdFlags } from './etcd-flags';

const DEFAULT_BIN_DIR = '/opt/cni/bin';
const DEFAULT_CONF_DIR = '/etc/cni/net.d';
const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));

const program = new Command('contivctl').description('operate the contiv netplugin on this node');

program
  .command('endpoints')
  .description("the netplugin's attachments")
  .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
  .option('--json', 'print JSON')
  .action(async (o: { socket: string; json?: boolean }) => {
    const endpoints = await nodeClient(o.socket).endpoints();
    if (o.json) return printJson(endpoints);
    const rows = endpoints.map((e) => [
      e.containerId.slice(0, 16),
      e.ifname,
      e.ipaddress,
      e.ipv6address ?? '-',
      e.hostVeth,
      e.state,
      e.podNamespace && e.podName ? `${e.podNamespace}/${e.podName}` : '-',
      e.netns,
    ]);
    printTable(['CONTAINER', 'IFNAME', 'IPV4', 'IPV6', 'HOST VETH', 'STATE', 'POD', 'NETNS'], rows);
  });

program
  .command('install-cni')
  .description('install the contivk8s plugin and our conflist for the runtime (atomic replace)')
  .option('--bin-dir <dir>', 'CNI plugin directory', DEFAULT_BIN_DIR)
  .option('--conf-dir <dir>', 'CNI config directory', DEFAULT_CONF_DIR)
  .option('--conf-name <file>', 'conflist file name (runtimes load the first in lexical order)', '10-contiv.conflist')
  .option('--name <network>', 'network name', 'contiv')
  .option('--socket <path>', 'netplugin socket the plugin talks to', DEFAULT_SOCKET)
  .option('--log-file <path>', 'plugin log file')
  .option('--mode <mode>', 'symlink: link the plugin where it is; copy: copy the self-contained executable into the bin dir (for an init container)', 'symlink')
  .option('--plugin <path>', 'the plugin executable to install', path.join(__dirname, '../../../bin/contivk8s'))
  .option('--json', 'print JSON')
  .action(
    (o: {
      binDir: string;
      confDir: string;
      confName: string;
      name: string;
      socket: string;
      logFile?: string;
      mode: string;
      plugin: string;
      json?: boolean;
    }) => {
      if (o.mode !== 'symlink' && o.mode !== 'copy') throw new Error(`--mode ${o.mode}: expected symlink or copy`);
      const done = installCni({ ...o, networkName: o.name, mode: o.mode });
      print(o.json ? JSON.stringify(done) : `installed ${done.plugin}${o.mode === 'copy' ? ' (self-contained copy)' : ''}\nwrote ${done.conf}`);
    },
  );

program
  .command('doctor')
  .description("this node's readiness: privileges of contivctl and the netplugin, mounts, CNI config, plugin, bridge; exits 1 on a failed check")
  .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
  .option('--bin-dir <dir>', 'CNI plugin directory', DEFAULT_BIN_DIR)
  .option('--conf-dir <dir>', 'CNI config directory', DEFAULT_CONF_DIR)
  .option('--json', 'print JSON')
  .action(async (o: { socket: string; binDir: string; confDir: string; json?: boolean }) => {
    const checks = await doctor(o);
    const failed = checks.filter((c) => c.status === 'fail').length;
    if (o.json) printJson({ ok: failed === 0, checks });
    else {
      printTable(
        ['STATUS', 'CHECK', 'DETAIL'],
        checks.map((c) => [c.status.toUpperCase(), c.name, c.detail]),
      );
      for (const c of checks.filter((c) => c.fix)) print(`fix (${c.name}): ${c.fix}`);
      print(failed ? `${failed} check(s) failed` : 'node ready');
    }
    process.exitCode = failed ? 1 : 0;
  });

program
  .command('leaks')
  .description('namespaces held only by bind mounts, duplicate IPs, dead allocations, orphan veths; works with the netplugin down; exits 1 on findings')
  .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
  .option('--bridge <name>', "the netplugin's bridge, when the netplugin does not answer to say it", 'contivbr0')
  .option('--fix', 'remove what is provably ours and provably dead (default: report only); needs the netplugin')
  .option('--json', 'print JSON')
  .action(async (o: { socket: string; bridge: string; fix?: boolean; json?: boolean }) => {
    const client = nodeClient(o.socket);
    let down: string | undefined;
    const allocations = async (): Promise<Allocations | undefined> => {
      try {
        return { health: await client.health(), endpoints: await client.endpoints() };
      } catch (err) {
        down = (err as Error).message;
        return undefined;
      }
    };
    const scan = async () => analyze(snapshot(await allocations(), o.bridge));
    const found = await scan();
    const fixed: { leak: Leak; action: string }[] = [];
    // without the netplugin's allocations nothing is provably dead, so nothing is fixable (analyze says so)
    if (o.fix && !down) {
      for (const leak of found.filter((l) => l.fixable)) fixed.push({ leak, action: await fix(leak, client) });
    }
    const remaining = o.fix && !down ? await scan() : found;
    const refused = o.fix && down ? `--fix refused: ${down}, so none of the findings is provably dead; start the netplugin and run again` : undefined;
    if (o.json) printJson({ allocationsChecked: !down, ...(down ? { netplugin: down } : {}), ...(refused ? { refused } : {}), found, fixed, remaining });
    else {
      if (down) print(`netplugin unreachable (${down}): allocations could not be checked; this is what the kernel shows without it`);
      if (!found.length) print('no leaks');
      for (const l of found) print(`${l.kind.padEnd(16)} ${l.fixable ? 'fixable' : 'report '}  ${l.detail}`);
      for (const f of fixed) print(`fixed: ${f.action}`);
      if (refused) print(refused);
      if (o.fix && remaining.length) print(`${remaining.length} finding(s) remain`);
      if (!o.fix && found.some((l) => l.fixable)) print('dry run: --fix removes the fixable ones');
    }
    process.exitCode = remaining.length || refused ? 1 : 0;
  });

const cluster = program.command('cluster').description('cluster mode: what etcd holds, and removing a dead node');

withEtcdFlags(cluster.command('show', { isDefault: true }).description('nodes, their blocks and every endpoint, as etcd holds them'), true)
  .option('--json', 'print JSON')
  .action(async (o: EtcdFlags & { json?: boolean }) => {
    // etcd's client (gRPC) is loaded only by the commands that need it
    const { openSession } = await import('../etcd/connect.js');
    const { readCluster } = await import('../contivctl/cluster.js');
    const etcd = openSession(etcdOptions(o));
    try {
      const c = await readCluster(etcd);
      if (o.json) return printJson(c);
      print('NODES');
      printTable(
        ['NAME', 'NODE IP', 'BLOCK', 'BLOCK6', 'VTEP MAC'],
        c.nodes.map((n) => [n.name, n.nodeIp, n.block, n.block6 ?? '-', n.vtepMac]),
      );
      print('\nBLOCKS');
      printTable(
        ['BLOCK', 'OWNER', 'OWNER ALIVE', 'IPS'],
        c.blocks.map((b) => [b.block, b.node, b.ownerAlive ? 'yes' : 'no (lease expired)', String(b.ips)]),
      );
      print('\nENDPOINTS');
      printTable(
        ['IP', 'NODE', 'CONTAINER', 'IFNAME', 'POD'],
        c.ips.map((e) => [e.ip, e.node, e.containerId.slice(0, 16), e.ifname, e.podNamespace && e.podName ? `${e.podNamespace}/${e.podName}` : '-']),
      );
    } finally {
      etcd.close();
    }
  });

withEtcdFlags(
  cluster
    .command('remove-node')
    .argument('<name>', 'the dead node')
    .description("a dead node's leftovers: its pods' IP keys and its blocks; refuses while its lease is alive; a dry run unless --yes"),
  true,
)
  .option('--yes', 'delete (default: show what would be deleted)')
  .option('--json', 'print JSON')
  .action(async (name: string, o: EtcdFlags & { yes?: boolean; json?: boolean }) => {
    const { openSession } = await import('../etcd/connect.js');
    const { planNodeRemoval, removeNode } = await import('../contivctl/cluster.js');
    const etcd = openSession(etcdOptions(o));
    try {
      const plan = await planNodeRemoval(etcd, name);
      const done = o.yes ? await removeNode(etcd, plan) : undefined;
      if (o.json)
        return printJson({
          node: name,
          dryRun: !o.yes,
          ips: plan.ips.map(({ value: _, ...ip }) => ip),
          blocks: plan.blocks.map(({ value: _, ...b }) => b),
          ...(done ? done : {}),
        });
      const verb = o.yes ? 'released' : 'would release';
      for (const ip of plan.ips) print(`${verb} ${ip.ip} (${ip.containerId.slice(0, 16)}/${ip.ifname})`);
      for (const b of plan.blocks) print(`${verb} block ${b.block}`);
      if (!plan.ips.length && !plan.blocks.length) print(`nothing of ${name} is left in etcd`);
      if (done?.skipped.length) print(`left alone (changed since, or the node came back): ${done.skipped.join(', ')}`);
      if (!o.yes && (plan.ips.length || plan.blocks.length)) print('dry run: --yes deletes them');
      if (done?.skipped.length) process.exitCode = 1;
    } finally {
      etcd.close();
    }
  });

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows])
    print(
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
}

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`contivctl: ${err.message}\n`);
  process.exit(1);
});
