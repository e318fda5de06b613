// bin/contivctl: the operator CLI.
import { Command } from 'commander';
import { request } from '../api/client';
import { Routes, endpointSchema } from '../api/wire';
import { DEFAULT_SOCKET } from '../cni/config';
import * as z from 'zod/mini';

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

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
}

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`contivctl: ${err.message}\n`);
  process.exit(1);
});
