// bin/netplugin: flags per ../shared/interface.md, then the daemon in the foreground.
import { Command } from 'commander';
import { DEFAULT_SOCKET } from '../cni/config';
import { runDaemon } from '../netplugin/daemon';

const program = new Command('netplugin')
  .description('contiv-compatible netplugin: wires pods named by /proc/<pid>/ns/net onto a Linux bridge')
  .option('--socket <path>', 'unix socket to serve HTTP on', DEFAULT_SOCKET)
  .option('--state-dir <dir>', 'IPAM and endpoint records', '/var/lib/contiv')
  .option('--bridge <name>', 'Linux bridge for the host veth ends (created if missing)', 'contivbr0')
  .option('--subnet <cidr>', 'IPv4 pod subnet of this node', '10.244.0.0/16')
  .option('--gateway <ip>', 'gateway on the bridge (default: first host of --subnet)')
  .option('--subnet6 <cidr>', 'optional IPv6 pod subnet (dual stack)')
  .option('--mtu <n>', 'MTU of both veth ends', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 576 || n > 65535) throw new Error(`--mtu ${v}: expected an integer from 576 to 65535`);
    return n;
  }, 1500)
  .option('--log-file <path>', 'winston JSON lines (default: stderr)')
  .option('--log-level <level>', 'error, warn, info or debug', 'info')
  .action(async (o) => {
    await runDaemon({ socket: o.socket, stateDir: o.stateDir, bridge: o.bridge, subnet: o.subnet, gateway: o.gateway, subnet6: o.subnet6, mtu: o.mtu, logFile: o.logFile, logLevel: o.logLevel });
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`netplugin: ${err.message}\n`);
  process.exit(1);
});
