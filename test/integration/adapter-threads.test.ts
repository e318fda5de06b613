// What setns means under Bun, proved on the running adapter: a stand-in netplugin holds the AddPod request
// and, while the adapter waits for the answer, reads the network namespace of each of the adapter's threads.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { readlink } from '../../src/netns/inventory';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { namedNetns, type TestNetns } from '../../testbed/sys';

interface ThreadView {
  tid: number;
  comm: string;
  netns?: string;
}

describe("integration: the adapter's threads while it waits for the netplugin", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-threads-'));
  const socket = path.join(dir, 'netplugin.sock');
  let pod: TestNetns;
  let server: http.Server;
  const seen: { pid: number; early: ThreadView[]; late: ThreadView[] }[] = [];

  const threads = (pid: number): ThreadView[] =>
    fs.readdirSync(`/proc/${pid}/task`).map((t) => ({
      tid: Number(t),
      comm: fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim(),
      netns: readlink(`/proc/${pid}/task/${t}/ns/net`),
    }));

  before(async () => {
    pod = namedNetns();
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const pid = Number(/^\/proc\/(\d+)\/ns\/net$/.exec(JSON.parse(body).CNI_NETNS)?.[1]);
        const early = threads(pid);
        // answer only after a while: the adapter is waiting all along
        setTimeout(() => {
          seen.push({ pid, early, late: threads(pid) });
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ result: 0, ipaddress: '10.254.9.2/24', gateway: '10.254.9.1', hostveth: 'ctvstandin0000', mac: '0a:58:0a:fe:09:02' }));
        }, 300);
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  after(() => {
    server.close();
    pod.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('its main thread, which /proc/<pid>/ns/net names, is in the pod namespace from the request to the answer', async () => {
    const r = await runAdapter(cniEnv('ADD', 'threads', pod.path), { cniVersion: '1.0.0', name: 'threads', type: 'contivk8s', socket });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    const [{ pid, early, late }] = seen;
    const podNetns = `net:[${fs.statSync(pod.path).ino}]`;
    const hostNetns = fs.readlinkSync('/proc/self/ns/net');
    for (const view of [early, late]) {
      expect(view.find((t) => t.tid === pid)?.netns).to.equal(podNetns);
      // the exchange is the main thread's own (Bun.connect): no HTTP client thread is started, and the unix
      // socket it connects is found by its path, whatever the thread's network namespace
      expect(view.map((t) => t.comm)).to.not.include('HTTP Client');
      // the threads Bun started before setns stay where they were; none is anywhere else
      expect(view.filter((t) => t.netns !== podNetns).every((t) => t.netns === hostNetns)).to.equal(true);
    }
  });
});
