// The bench's /healthz prober, a process of its own: the harness forks hundreds of execs at once, and a probe
// timed on the harness's event loop would count the harness's stalls as the daemon's. Asks GET /healthz over
// the socket again as soon as it answers, until its stdin closes; then prints {"worstMs":…,"probes":…}.
//   node healthz-probe.js <socket>
import * as http from 'node:http';

const socket = process.argv[2];

function healthzMs(): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6));
      })
      .on('error', reject);
  });
}

async function main() {
  let probing = true;
  process.stdin.on('end', () => {
    probing = false;
  });
  process.stdin.resume();
  const probes: number[] = [];
  while (probing) probes.push(await healthzMs());
  process.stdout.write(`${JSON.stringify({ worstMs: Math.max(...probes), probes: probes.length })}\n`);
}

main().catch((e) => {
  process.stderr.write(`healthz-probe: ${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
});
