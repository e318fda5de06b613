// bin/contivctl: the operator CLI. Exit status 0 clean, 1 findings, 2 usage or error, for every command;
// listings take -o table|wide|json|yaml (and --json); errors lead with what to do.
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { axiosClient } from '../api/axios-transport';
import { delQueueDir, listQueuedDels } from '../api/del-queue';
import { DEFAULT_SOCKET } from '../api/routes';
import { bashCompletion, zshCompletion } from '../contivctl/completion';
import { type Check, doctor } from '../contivctl/doctor';
import { CHAINABLE, type ChainedPlugin, installCni } from '../contivctl/install';
import { type Allocations, analyze, fix, type Leak, snapshot } from '../contivctl/leaks';
import { Exit, explain, FORMATS, formatOf, render, table } from '../contivctl/output';
import { VERSION } from '../version';
import { type EtcdFlags, etcdOptions, withEtcdFlags } from './etcd-flags';

const DEFAULT_BIN_DIR = '/opt/cni/bin';
const DEFAULT_CONF_DIR = '/etc/cni/net.d';
const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** The output flags every listing takes. */
function withOutput(cmd: Command): Command {
  return cmd.addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table')).option('--json', 'the same as -o json');
}

/** A table's POD column: namespace/name, or '-' when the attachment names none. */
const podOf = (e: { podNamespace?: string; podName?: string }): string => (e.podNamespace && e.podName ? `${e.podNamespace}/${e.podName}` : '-');

const examples = (cmd: Command, lines: string[]): Command => cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);

/** Commands that read every process's namespaces and mounts refuse to run half-blind. */
function requireRoot(command: string): void {
  if (process.getuid?.() !== 0) {
    throw Object.assign(new Error(`contivctl ${command} needs root: it reads every process's namespaces, fds and mounts`), {
      hint: `run it as root (sudo contivctl ${command}), with CAP_SYS_PTRACE and CAP_SYS_ADMIN`,
    });
  }
}

const program = new Command('contivctl')
  .description('operate the contiv netplugin on this node')
  .version(VERSION, '--version', 'print the version')
  .showHelpAfterError()
  .exitOverride();

examples(withOutput(program.command('endpoints').description("the netplugin's attachments").option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)), [
  'contivctl endpoints',
  'contivctl endpoints -o wide',
  'contivctl endpoints -o json --socket /run/contiv/contiv-cni.sock',
]).action(async (o: { socket: string; output: string; json?: boolean }) => {
  const endpoints = await axiosClient(o.socket).endpoints();
  print(
    render(formatOf(o), endpoints, (wide) =>
      table(
        endpoints,
        [
          { head: 'CONTAINER', value: (e) => (wide ? e.containerId : e.containerId.slice(0, 16)) },
          { head: 'IFNAME', value: (e) => e.ifname },
          { head: 'IPV4', value: (e) => e.ipaddress },
          { head: 'IPV6', value: (e) => e.ipv6address ?? '-' },
          { head: 'HOST VETH', value: (e) => e.hostVeth },
          { head: 'STATE', value: (e) => e.state },
          { head: 'POD', value: podOf },
          { head: 'NETNS', value: (e) => e.netns || '-' },
          { head: 'MAC', value: (e) => e.mac, wide: true },
          { head: 'CREATED', value: (e) => e.createdAt, wide: true },
          { head: 'ORIGIN', value: (e) => e.origin ?? 'add', wide: true },
        ],
        wide,
      ),
    ),
  );
});

examples(
  program
    .command('install-cni')
    .description('install the contivk8s plugin and our conflist for the runtime (plugin first, then the conflist; each replaced atomically)')
    .option('--bin-dir <dir>', 'CNI plugin directory', DEFAULT_BIN_DIR)
    .option('--conf-dir <dir>', 'CNI config directory', DEFAULT_CONF_DIR)
    .option('--conf-name <file>', 'conflist file name (runtimes load the first in lexical order)', '10-contiv.conflist')
    .option('--name <network>', 'network name', 'contiv')
    .option('--socket <path>', 'netplugin socket the plugin talks to', DEFAULT_SOCKET)
    .option('--log-file <path>', 'plugin log file')
    .addOption(
      new Option('--mode <mode>', 'symlink: link the plugin where it is; copy: copy the self-contained executable into the bin dir (for an init container)')
        .choices(['symlink', 'copy'])
        .default('symlink'),
    )
    .option('--plugin <path>', 'the plugin executable to install', path.join(__dirname, '../../../bin/contivk8s'))
    .option('--chain <plugins>', `reference plugins to chain after ours, comma-separated (${CHAINABLE.join(', ')}); they must be in --bin-dir`, '')
    .option('--json', 'print JSON'),
  ['contivctl install-cni', 'contivctl install-cni --mode copy --bin-dir /host/opt/cni/bin --conf-dir /host/etc/cni/net.d --chain portmap'],
).action(
  (o: {
    binDir: string;
    confDir: string;
    confName: string;
    name: string;
    socket: string;
    logFile?: string;
    mode: 'symlink' | 'copy';
    plugin: string;
    chain: string;
    json?: boolean;
  }) => {
    const chain = o.chain.split(',').filter(Boolean);
    const unknown = chain.filter((p) => !(CHAINABLE as readonly string[]).includes(p));
    if (unknown.length)
      throw new CommanderError(Exit.Error, 'contivctl.usage', `--chain ${o.chain}: ${unknown.join(', ')} is not one of ${CHAINABLE.join(', ')}`);
    const done = installCni({ ...o, networkName: o.name, chain: chain as ChainedPlugin[] });
    print(o.json ? JSON.stringify(done) : `installed ${done.plugin}${o.mode === 'copy' ? ' (self-contained copy)' : ''}\nwrote ${done.conf}`);
  },
);

examples(
  withOutput(
    program
      .command('doctor')
      .description(
        "this node's readiness: privileges of contivctl and the netplugin, mounts, CNI config, plugin and its version, bridge; exits 1 on a failed check",
      )
      .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
      .option('--bin-dir <dir>', 'CNI plugin directory', DEFAULT_BIN_DIR)
      .option('--conf-dir <dir>', 'CNI config directory', DEFAULT_CONF_DIR),
  ),
  ['contivctl doctor', 'contivctl doctor -o json'],
).action(async (o: { socket: string; binDir: string; confDir: string; output: string; json?: boolean }) => {
  requireRoot('doctor');
  const checks = await doctor(o);
  const failed = checks.filter((c) => c.status === 'fail').length;
  print(
    render(formatOf(o), { ok: failed === 0, checks }, (wide) =>
      [
        table(
          checks,
          [
            { head: 'STATUS', value: (c: Check) => c.status.toUpperCase() },
            { head: 'CHECK', value: (c) => c.name },
            { head: 'DETAIL', value: (c) => c.detail },
            { head: 'FIX', value: (c) => c.fix ?? '', wide: true },
          ],
          wide,
        ),
        ...(wide ? [] : checks.filter((c) => c.fix && c.status !== 'ok').map((c) => `fix (${c.name}): ${c.fix}`)),
        failed ? `${failed} check(s) failed` : 'node ready',
      ].join('\n'),
    ),
  );
  process.exitCode = failed ? Exit.Findings : Exit.Clean;
});

examples(
  withOutput(
    program
      .command('leaks')
      .description(
        'addresses held twice, namespaces only mounts keep alive holding our addresses, records whose veth is gone, ' +
          'marked veths without a record, links on our bridge that are not ours; works with the netplugin down; exits 1 on findings',
      )
      .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
      .option('--bridge <name>', "the netplugin's bridge, when the netplugin does not answer to say it", 'contivbr0')
      .option('--fix', 'have the netplugin fix what is provably dead (free) or provably live (adopt), re-verified as it acts; default: report only'),
  ),
  ['contivctl leaks', 'contivctl leaks --fix', 'contivctl leaks -o yaml --bridge contivbr0'],
).action(async (o: { socket: string; bridge: string; fix?: boolean; output: string; json?: boolean }) => {
  requireRoot('leaks');
  const client = axiosClient(o.socket);
  let down: string | undefined;
  const allocations = async (): Promise<Allocations | undefined> => {
    try {
      return { health: await client.health(), endpoints: await client.endpoints() };
    } catch (err) {
      down = (err as Error).message;
      return undefined;
    }
  };
  const takenAt = Date.now();
  const found = analyze(snapshot(takenAt, await allocations(), o.bridge));
  // without the netplugin's allocations nothing is provably dead, so nothing is fixable (analyze says so)
  const fixed = o.fix && !down ? await fix(found, takenAt, client) : [];
  const remaining = o.fix && !down ? analyze(snapshot(Date.now(), await allocations(), o.bridge)) : found;
  const refused = o.fix && down ? `--fix refused: ${down}, so none of the findings is provably dead; start the netplugin and run again` : undefined;
  const data = { allocationsChecked: !down, ...(down ? { netplugin: down } : {}), ...(refused ? { refused } : {}), found, fixed, remaining };
  print(
    render(formatOf(o), data, (wide) =>
      [
        ...(down ? [`netplugin unreachable (${down}): allocations could not be checked; this is what the kernel shows without it`] : []),
        ...(found.length ? [] : ['no leaks']),
        ...found.map((l: Leak) => `${l.kind.padEnd(17)} ${l.fixable ? 'fixable' : 'report '}  ${l.detail}${wide ? `  ${JSON.stringify(l)}` : ''}`),
        ...fixed.map((f) => `${f.action}: ${JSON.stringify(f.finding)}${f.reason ? ` (${f.reason})` : ''}`),
        ...(refused ? [refused] : []),
        ...(o.fix && remaining.length ? [`${remaining.length} finding(s) remain`] : []),
        ...(!o.fix && found.some((l) => l.fixable) ? ['dry run: --fix has the netplugin fix the fixable ones'] : []),
      ].join('\n'),
    ),
  );
  process.exitCode = remaining.length || refused ? Exit.Findings : Exit.Clean;
});

examples(
  withOutput(
    program
      .command('del-queue')
      .description('DELs the plugin queued beside the socket while the netplugin was unreachable; the netplugin applies them (works with it down)')
      .option('--socket <path>', 'netplugin socket (the queue is <its dir>/del-queue)', DEFAULT_SOCKET),
  ),
  ['contivctl del-queue', 'contivctl del-queue -o json'],
).action((o: { socket: string; output: string; json?: boolean }) => {
  const entries = listQueuedDels(o.socket).map((e) => (e.del ? { ...e.del, queuedAt: new Date(e.del.queuedAt).toISOString(), file: e.file } : e));
  print(
    render(formatOf(o), entries, (wide) =>
      entries.length
        ? table(
            entries,
            [
              { head: 'QUEUED AT', value: (e) => ('queuedAt' in e ? e.queuedAt : '-') },
              { head: 'CONTAINER', value: (e) => ('containerId' in e ? (wide ? e.containerId : e.containerId.slice(0, 16)) : e.file) },
              { head: 'IFNAME', value: (e) => ('ifname' in e ? e.ifname : '-') },
              { head: 'REASON', value: (e) => ('reason' in e ? e.reason : `invalid: ${'problem' in e ? e.problem : ''}`) },
              { head: 'FILE', value: (e) => e.file, wide: true },
            ],
            wide,
          )
        : `no queued DEL in ${delQueueDir(o.socket)}`,
    ),
  );
});

const cluster = program.command('cluster').description('cluster mode: what etcd holds, and removing a dead node');

examples(
  withOutput(withEtcdFlags(cluster.command('show', { isDefault: true }).description('nodes, their blocks and every endpoint, as etcd holds them'), true)),
  ['contivctl cluster show --etcd-endpoints https://10.0.0.1:2379 --etcd-ca ca.pem --etcd-cert client.pem --etcd-key client-key.pem'],
).action(async (o: EtcdFlags & { output: string; json?: boolean }) => {
  // etcd's client (gRPC) is loaded only by the commands that need it
  const { openSession } = await import('../etcd/connect.js');
  const { readCluster } = await import('../contivctl/cluster.js');
  const etcd = openSession(etcdOptions(o));
  try {
    const c = await readCluster(etcd);
    print(
      render(formatOf(o), c, (wide) =>
        [
          'NODES',
          table(
            c.nodes,
            [
              { head: 'NAME', value: (n) => n.name },
              { head: 'NODE IP', value: (n) => n.nodeIp },
              { head: 'BLOCK', value: (n) => n.block },
              { head: 'BLOCK6', value: (n) => n.block6 ?? '-' },
              { head: 'VTEP MAC', value: (n) => n.vtepMac, wide: true },
            ],
            wide,
          ),
          '\nBLOCKS',
          table(
            c.blocks,
            [
              { head: 'BLOCK', value: (b) => b.block },
              { head: 'OWNER', value: (b) => b.node },
              { head: 'OWNER ALIVE', value: (b) => (b.ownerAlive ? 'yes' : 'no (lease expired)') },
              { head: 'IPS', value: (b) => String(b.ips) },
              { head: 'CLAIMED AT', value: (b) => b.claimedAt, wide: true },
            ],
            wide,
          ),
          '\nENDPOINTS',
          table(
            c.ips,
            [
              { head: 'IP', value: (e) => e.ip },
              { head: 'NODE', value: (e) => e.node },
              { head: 'CONTAINER', value: (e) => (wide ? e.containerId : e.containerId.slice(0, 16)) },
              { head: 'IFNAME', value: (e) => e.ifname },
              { head: 'POD', value: podOf },
              { head: 'NETNS', value: (e) => e.netns, wide: true },
            ],
            wide,
          ),
        ].join('\n'),
      ),
    );
  } finally {
    etcd.close();
  }
});

examples(
  withOutput(
    withEtcdFlags(
      cluster
        .command('remove-node')
        .argument('<name>', 'the dead node')
        .description("a dead node's leftovers: its pods' IP keys and its blocks; refuses while its lease is alive; a dry run unless --yes"),
      true,
    ),
  ).option('--yes', 'delete (default: show what would be deleted)'),
  ['contivctl cluster remove-node node-7 --etcd-endpoints https://10.0.0.1:2379 --etcd-ca ca.pem --etcd-cert c.pem --etcd-key k.pem --yes'],
).action(async (name: string, o: EtcdFlags & { yes?: boolean; output: string; json?: boolean }) => {
  const { openSession } = await import('../etcd/connect.js');
  const { planNodeRemoval, removeNode } = await import('../contivctl/cluster.js');
  const etcd = openSession(etcdOptions(o));
  try {
    const plan = await planNodeRemoval(etcd, name);
    const done = o.yes ? await removeNode(etcd, plan) : undefined;
    const data = {
      node: name,
      dryRun: !o.yes,
      ips: plan.ips.map(({ value: _, ...ip }) => ip),
      blocks: plan.blocks.map(({ value: _, ...b }) => b),
      ...(done ?? {}),
    };
    const verb = o.yes ? 'released' : 'would release';
    print(
      render(formatOf(o), data, () =>
        [
          ...plan.ips.map((ip) => `${verb} ${ip.ip} (${ip.containerId.slice(0, 16)}/${ip.ifname})`),
          ...plan.blocks.map((b) => `${verb} block ${b.block}`),
          ...(!plan.ips.length && !plan.blocks.length ? [`nothing of ${name} is left in etcd`] : []),
          ...(done?.skipped.length ? [`left alone (changed since, or the node came back): ${done.skipped.join(', ')}`] : []),
          ...(!o.yes && (plan.ips.length || plan.blocks.length) ? ['dry run: --yes deletes them'] : []),
        ].join('\n'),
      ),
    );
    if (done?.skipped.length) process.exitCode = Exit.Findings;
  } finally {
    etcd.close();
  }
});

examples(program.command('completion').argument('<shell>', 'bash or zsh').description('print a shell completion script for contivctl'), [
  'source <(contivctl completion bash)',
  'contivctl completion zsh > ~/.zsh/completions/_contivctl',
]).action((shell: string) => {
  if (shell !== 'bash' && shell !== 'zsh') throw new CommanderError(Exit.Error, 'contivctl.usage', `completion ${shell}: expected bash or zsh`);
  print(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // --help and --version end here too; a usage error has been printed by commander
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(Exit.Clean);
    if (err.code === 'contivctl.usage') process.stderr.write(`contivctl: ${err.message}\n`);
    process.exit(Exit.Error);
  }
  process.stderr.write(`contivctl: ${explain(err)}\n`);
  process.exit(Exit.Error);
});
