// bin/contivctl: the operator CLI.
import * as path from 'node:path';
import { Command } from 'commander';
import { request } from '../api/client';
import { Routes, endpointSchema } from '../api/wire';
import { DEFAULT_SOCKET } from '../cni/config';
import * as z from 'zod/mini';
import { installCni } from './install';

const program = new Command('contivctl').description('operate the contiv netplugin on this node');

program
  .command('endpoints')
  .description("the netplugin's attachments")
  .option('--socket <path>', 'netplugin socket', DEFAULT_SOCKET)
  .option('--json', 'print JSON')
  .action(async (o: { socket: string; json?: boolean }) => {
    const res = await request({ socket: o.socket, timeoutMs: 10_000 }, 'GET', Routes.endpoints);
    const endpoints = z.array(endpointSchema).parse(JSON.parse(res.body));
    if (o.json) return void process.stdout.write(JSON.stringify(endpoints, null, 2) + '\n');
    const rows = endpoints.map((e) => [e.containerId.slice(0, 16), e.ifname, e.ipaddress, e.ipv6address ?? '-', e.hostVeth, e.state, e.podNamespace && e.podName ? `${e.podNamespace}/${e.podName}` : '-', e.netns]);
    printTable(['CONTAINER', 'IFNAME', 'IPV4', 'IPV6', 'HOST VETH', 'STATE', 'POD', 'NETNS'], rows);
  });

program
  .command('install-cni')
  .description('install the contivk8s plugin and our conflist for the runtime (atomic replace)')
  .option('--bin-dir <dir>', 'CNI plugin directory', '/opt/cni/bin')
  .option('--conf-dir <dir>', 'CNI config directory', '/etc/cni/net.d')
  .option('--conf-name <file>', 'conflist file name (runtimes load the first in lexical order)', '10-contiv.conflist')
  .option('--name <network>', 'network name', 'contiv')
  .option('--socket <path>', 'netplugin socket the plugin talks to', DEFAULT_SOCKET)
  .option('--log-file <path>', 'plugin log file')
  .option('--json', 'print JSON')
  .action((o: { binDir: string; confDir: string; confName: string; name: string; socket: string; logFile?: string; json?: boolean }) => {
    const done = installCni({ binDir: o.binDir, confDir: o.confDir, confName: o.confName, networkName: o.name, socket: o.socket, logFile: o.logFile, plugin: path.join(__dirname, '../../../bin/contivk8s') });
    process.stdout.write(o.json ? JSON.stringify(done) + '\n' : `installed ${done.plugin}\nwrote ${done.conf}\n`);
  });

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
}

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`contivctl: ${err.message}\n`);
  process.exit(1);
});
