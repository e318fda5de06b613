// A node agent never harms a live pod. Each case is what goes wrong on a real node, on the real kernel: the
// store lost or damaged under live pods, a full disk, SIGTERM with a half-sent request open, an ADD its caller
// gave up on, a DEL while the daemon is down, a --socket that names a file, state readable by anyone, and a
// flood of connections. Afterwards no live pod has lost its network and no address is held twice.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { delQueueDir } from '../../src/api/del-queue';
import type { Endpoint } from '../../src/api/wire';
import { ErrorCode } from '../../src/errors';
import { parseMark } from '../../src/linux/mark';
import { MAX_BODY } from '../../src/netplugin/server';
import { type AdapterRun, cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, links, namedNetns, processNetns, sh, type TestNetns, tryRun, waitFor } from '../../testbed/sys';

interface Pod {
  id: string;
  ns: TestNetns;
  ip: string;
}

/** The pod's global addresses on eth0 (CIDR form), as the kernel shows them from inside. */
const eth0Of = (ns: TestNetns) =>
  (links(ns.path).find((l) => l.ifname === 'eth0')?.addr_info ?? [])
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();

describe('integration: a node agent never harms a live pod', function () {
  this.timeout(180_000);
  const daemons: TestNetplugin[] = [];
  const made: TestNetns[] = [];
  const mounts: string[] = [];
  after(async () => {
    for (const m of mounts) tryRun('umount', ['-l', m]);
    for (const n of made) n.remove();
    for (const d of daemons) await d.destroy();
  });

  const daemon = (subnet: string, opts: Partial<ConstructorParameters<typeof TestNetplugin>[0]> = {}) => {
    const np = new TestNetplugin({ subnet, ...opts });
    daemons.push(np);
    return np;
  };
  const add = (np: TestNetplugin, id: string, ns: TestNetns, conf: object = {}): Promise<AdapterRun> =>
    runAdapter(cniEnv('ADD', id, ns.path), { ...np.conf, ...conf });
  const del = (np: TestNetplugin, id: string, ns: TestNetns, conf: object = {}): Promise<AdapterRun> =>
    runAdapter(cniEnv('DEL', id, ns.path), { ...np.conf, ...conf });
  async function pods(np: TestNetplugin, prefix: string, n: number): Promise<Pod[]> {
    const out: Pod[] = [];
    for (let i = 0; i < n; i++) {
      const ns = namedNetns();
      made.push(ns);
      const r = await add(np, `${prefix}-${i}`, ns);
      expect(r.status, r.stdout).to.equal(0);
      out.push({ id: `${prefix}-${i}`, ns, ip: r.json.ips[0].address });
    }
    return out;
  }
  /** Every pod still has its address on eth0 and its veth on the bridge, and its record names that address once. */
  async function intact(np: TestNetplugin, live: Pod[]): Promise<Endpoint[]> {
    const endpoints = await np.endpoints();
    for (const p of live) {
      expect(eth0Of(p.ns), `${p.id} lost its network`).to.include(p.ip);
      const e = endpoints.find((x) => x.containerId === p.id);
      expect(e?.ipaddress, `${p.id}'s record`).to.equal(p.ip);
      expect(np.bridgePorts()).to.include(e!.hostVeth);
    }
    const ips = endpoints.map((e) => e.ipaddress);
    expect(new Set(ips).size, 'an address held twice').to.equal(ips.length);
    return endpoints;
  }

  describe('the store lost or damaged under five live pods (kill -9 first)', () => {
    const losses: [string, (dir: string) => void][] = [
      ['the WAL removed', (d) => fs.rmSync(path.join(d, 'netplugin.db-wal'))],
      ['the database deleted', (d) => fs.rmSync(d, { recursive: true })],
      [
        'the database truncated to nothing, WAL removed',
        (d) => {
          fs.truncateSync(path.join(d, 'netplugin.db'), 0);
          fs.rmSync(path.join(d, 'netplugin.db-wal'));
        },
      ],
      ['the WAL cut in half', (d) => fs.truncateSync(path.join(d, 'netplugin.db-wal'), Math.floor(fs.statSync(path.join(d, 'netplugin.db-wal')).size / 2))],
      [
        'eight bytes corrupted in the middle of the WAL',
        (d) => {
          const wal = path.join(d, 'netplugin.db-wal');
          const fd = fs.openSync(wal, 'r+');
          fs.writeSync(fd, Buffer.from('deadbeefcafebabe', 'hex'), 0, 8, Math.floor(fs.statSync(wal).size / 2));
          fs.closeSync(fd);
        },
      ],
    ];
    losses.forEach(([how, lose], i) => {
      it(`${how}: every pod keeps its network and address, the lost records are adopted loudly, no address is handed out twice`, async () => {
        const np = daemon(`10.248.${20 + i}.0/24`, { subnet6: `fd00:248:${20 + i}::/64` });
        await np.start();
        const live = await pods(np, `loss${i}`, 5);
        await np.stop('SIGKILL');
        lose(np.stateDir);
        await np.start();
        const endpoints = await intact(np, live);
        const adopted = endpoints.filter((e) => e.origin === 'adopted');
        const metrics = await np.client.metrics();
        expect(metrics).to.include(`contiv_netplugin_adopted_attachments_total ${adopted.length}`);
        if (adopted.length) expect(fs.readFileSync(np.logFile, 'utf8')).to.include('the store had lost live attachments');
        if (how.includes('removed') || how.includes('deleted')) expect(adopted.length).to.equal(5);
        // the next ADD gets an address no live pod holds, and an adopted pod's DEL frees it
        const [next] = await pods(np, `loss${i}-next`, 1);
        expect(live.map((p) => p.ip)).to.not.include(next.ip);
        expect((await del(np, live[0].id, live[0].ns)).status).to.equal(0);
        expect(eth0Of(live[0].ns)).to.deep.equal([]);
        expect((await np.endpoints()).map((e) => e.containerId)).to.not.include(live[0].id);
      });
    });

    it('a database that cannot be read (zeroed, its WAL lost) is refused, naming the file and what to do; pods untouched; moved aside, adopted', async () => {
      const np = daemon('10.248.30.0/24');
      await np.start();
      const live = await pods(np, 'zeroed', 3);
      await np.stop('SIGKILL');
      const db = path.join(np.stateDir, 'netplugin.db');
      fs.writeFileSync(db, Buffer.alloc(fs.statSync(db).size));
      fs.rmSync(`${db}-wal`);
      const refused = spawnSync(path.join(BIN, 'netplugin'), np.args(), { encoding: 'utf8', timeout: 30_000 });
      expect(refused.status).to.equal(1);
      expect(refused.stderr).to.include(`${db} cannot be read`);
      expect(refused.stderr).to.include(`mv ${db} ${db}.damaged`);
      for (const p of live) expect(eth0Of(p.ns)).to.include(p.ip);
      expect(
        fs.readFileSync(db).every((b) => b === 0),
        'the damaged file was rewritten',
      ).to.equal(true);
      for (const f of fs.readdirSync(np.stateDir)) fs.renameSync(path.join(np.stateDir, f), path.join(np.stateDir, `${f}.damaged`));
      await np.start();
      expect((await intact(np, live)).every((e) => e.origin === 'adopted')).to.equal(true);
    });
  });

  describe('a full state dir (a 600 KiB tmpfs)', () => {
    const np = daemon('10.248.40.0/24');
    const filler = () => path.join(np.stateDir, 'filler');
    const fill = (leave = 0) => {
      const fd = fs.openSync(filler(), 'a');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(4096));
      } catch {
        /* ENOSPC: full */
      } finally {
        fs.closeSync(fd);
      }
      if (leave) fs.truncateSync(filler(), Math.max(0, fs.statSync(filler()).size - leave));
    };
    before(async () => {
      fs.mkdirSync(np.stateDir, { recursive: true });
      sh('mount', ['-t', 'tmpfs', '-o', 'size=600k,mode=0700', 'tmpfs', np.stateDir]);
      mounts.push(np.stateDir);
      await np.start();
    });

    it('refuses ADD and DEL before changing anything, with the real cause; once space returns both work, without a restart', async () => {
      const [a] = await pods(np, 'full-a', 1);
      const b = namedNetns();
      made.push(b);
      fill();
      const ports = np.bridgePorts();
      const added = await add(np, 'full-b', b);
      expect(added.json.code, added.stdout).to.equal(ErrorCode.Io);
      expect(added.json.msg).to.equal(`the state dir ${np.stateDir} is full`);
      expect(links(b.path).map((l) => l.ifname)).to.deep.equal(['lo']);
      expect(np.bridgePorts()).to.deep.equal(ports);
      const deleted = await del(np, a.id, a.ns);
      expect(deleted.json.code, deleted.stdout).to.equal(ErrorCode.Io);
      await intact(np, [a]);
      fs.rmSync(filler());
      expect((await del(np, a.id, a.ns)).status).to.equal(0);
      expect((await add(np, 'full-b', b)).status).to.equal(0);
      expect((await del(np, 'full-b', b)).status).to.equal(0);
      expect(await np.endpoints()).to.deep.equal([]);
    });

    it('on a disk that fills while ADDs run, each ADD is all or nothing, and the store is consistent once space returns', async () => {
      fill(96 << 10);
      const attempts: { pod: TestNetns; id: string; ok: boolean }[] = [];
      for (let i = 0; i < 16; i++) {
        const pod = namedNetns();
        made.push(pod);
        const r = await add(np, `filling-${i}`, pod);
        attempts.push({ pod, id: `filling-${i}`, ok: r.status === 0 });
        if (r.status !== 0) expect(r.json.msg, r.stdout).to.match(/is full/);
      }
      fs.rmSync(filler());
      // deferred removals finish on their own, without a restart
      await waitFor('no pending record', async () => (await np.endpoints()).every((e) => e.state === 'ready'), 10_000);
      const recorded = new Set((await np.endpoints()).map((e) => e.containerId));
      for (const a of attempts) {
        expect(recorded.has(a.id), `${a.id}: answered ${a.ok ? 'ok' : 'failed'} but recorded ${recorded.has(a.id)}`).to.equal(a.ok);
        expect(eth0Of(a.pod).length > 0, `${a.id}: answered ${a.ok ? 'ok' : 'failed'}`).to.equal(a.ok);
      }
      expect(np.bridgePorts().length).to.equal(recorded.size);
      for (const a of attempts.filter((x) => x.ok)) expect((await del(np, a.id, a.pod)).status).to.equal(0);
    });
  });

  it('SIGTERM with a half-sent request open: the daemon exits 0 within a few seconds and its successor starts on the same state dir', async () => {
    const np = daemon('10.248.41.0/24');
    await np.start();
    const half = net.connect(np.socket);
    await new Promise((r) => half.once('connect', r));
    half.write('POST /ContivCNI.AddPod HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"CNI_CON');
    half.on('error', () => undefined);
    const t0 = Date.now();
    expect(await np.stop('SIGTERM')).to.equal(0);
    expect(Date.now() - t0).to.be.lessThan(7_000);
    await np.start();
    expect(await np.client.healthy()).to.equal(true);
    half.destroy();
  });

  describe('an ADD its caller gave up on', () => {
    const np = daemon('10.248.42.0/24');
    before(() => np.start());

    it("is undone when the caller closes its connection before the answer (contiv's request, the namespace held by a live process)", async () => {
      const ports = np.bridgePorts();
      for (let trial = 0; trial < 5; trial++) {
        const pod = await processNetns();
        made.push(pod);
        const attr = {
          K8S_POD_NAME: 'gone',
          K8S_POD_NAMESPACE: 'default',
          K8S_POD_INFRA_CONTAINER_ID: `gave-up-${trial}`,
          CNI_NETNS: pod.path,
          CNI_IFNAME: 'eth0',
        };
        const body = JSON.stringify(attr);
        const before = Number(/contiv_netplugin_abandoned_adds_total (\d+)/.exec(await np.client.metrics())?.[1] ?? 0);
        const c = net.connect(np.socket, () => {
          c.end(`POST /ContivCNI.AddPod HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          c.destroy();
        });
        c.on('error', () => undefined);
        await waitFor('the daemon to undo the abandoned ADD', async () => {
          const m = Number(/contiv_netplugin_abandoned_adds_total (\d+)/.exec(await np.client.metrics())?.[1] ?? 0);
          return m > before;
        });
        expect((await np.endpoints()).map((e) => e.containerId)).to.not.include(`gave-up-${trial}`);
        expect(np.bridgePorts()).to.deep.equal(ports);
        expect(links(pod.path).map((l) => l.ifname)).to.deep.equal(['lo']);
      }
    });

    it('under a mass DEL, every ADD answered ok is attached and every ADD answered failed left nothing', async () => {
      const doomed = await pods(np, 'mass', 40);
      const fresh = Array.from({ length: 16 }, () => namedNetns());
      made.push(...fresh);
      const [, adds] = await Promise.all([
        Promise.all(doomed.map((p) => del(np, p.id, p.ns))),
        Promise.all(fresh.map((ns, i) => add(np, `hurried-${i}`, ns, { timeoutMs: 150 }))),
      ]);
      await new Promise((r) => setTimeout(r, 1500));
      const recorded = new Set((await np.endpoints()).map((e) => e.containerId));
      adds.forEach((r, i) => {
        const ok = r.status === 0;
        expect(recorded.has(`hurried-${i}`), `hurried-${i} answered ${ok ? 'ok' : r.json.msg}`).to.equal(ok);
        expect(eth0Of(fresh[i]).length > 0, `hurried-${i} answered ${ok ? 'ok' : r.json.msg}`).to.equal(ok);
      });
      await Promise.all(fresh.map((ns, i) => del(np, `hurried-${i}`, ns)));
    });
  });

  describe('a DEL while the daemon is down', () => {
    const np = daemon('10.248.43.0/24');
    before(() => np.start());

    it('is queued beside the socket and answered ok; contivctl shows it; the restarted daemon applies it before it serves an ADD', async () => {
      const [p] = await pods(np, 'queued', 1);
      const veth = (await np.endpoints())[0].hostVeth;
      await np.stop('SIGKILL');
      const r = await del(np, p.id, p.ns);
      expect(r.status, r.stdout).to.equal(0);
      expect(r.stdout).to.equal('');
      expect(fs.readdirSync(delQueueDir(np.socket)).filter((f) => f.endsWith('.json'))).to.have.length(1);
      const listed = JSON.parse(spawnSync(path.join(BIN, 'contivctl'), ['del-queue', '--socket', np.socket, '-o', 'json'], { encoding: 'utf8' }).stdout);
      expect(listed.map((e: { containerId: string }) => e.containerId)).to.deep.equal([p.id]);
      // the pod's network is still there: only the runtime's intent was recorded
      expect(eth0Of(p.ns)).to.include(p.ip);
      await np.start();
      // ready means the queue was applied first
      expect(await np.endpoints()).to.deep.equal([]);
      expect(np.bridgePorts()).to.not.include(veth);
      expect(eth0Of(p.ns)).to.deep.equal([]);
      expect(fs.readdirSync(delQueueDir(np.socket)).filter((f) => f.endsWith('.json'))).to.deep.equal([]);
      expect(await np.client.metrics()).to.include('contiv_netplugin_queued_dels_applied_total 1');
    });

    it('a DEL that times out on a stopped daemon is queued too, and applied when it resumes', async () => {
      const [p] = await pods(np, 'stuck', 1);
      process.kill(np.pid!, 'SIGSTOP');
      let r: AdapterRun;
      try {
        r = await del(np, p.id, p.ns, { timeoutMs: 500 });
      } finally {
        process.kill(np.pid!, 'SIGCONT');
      }
      expect(r.status, r.stdout).to.equal(0);
      await waitFor('the DEL to be applied', async () => (await np.endpoints()).length === 0 && eth0Of(p.ns).length === 0);
    });

    it('a queued DEL never removes an attachment made after it was queued', async () => {
      const [p] = await pods(np, 'newer', 1);
      fs.mkdirSync(delQueueDir(np.socket), { recursive: true });
      const entry = { containerId: p.id, ifname: 'eth0', netns: p.ns.path, queuedAt: Date.now() - 60_000, reason: 'test' };
      fs.writeFileSync(path.join(delQueueDir(np.socket), `${entry.queuedAt}-1-old.json`), JSON.stringify(entry));
      await waitFor('the stale entry to be consumed', () => fs.readdirSync(delQueueDir(np.socket)).filter((f) => f.endsWith('.json')).length === 0);
      await intact(np, [p]);
      expect((await del(np, p.id, p.ns)).status).to.equal(0);
    });
  });

  it('--socket naming a regular file is refused and the file kept', async () => {
    const np = daemon('10.248.44.0/24');
    fs.mkdirSync(path.dirname(np.socket), { recursive: true });
    fs.writeFileSync(np.socket, 'precious');
    const r = spawnSync(path.join(BIN, 'netplugin'), np.args(), { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include(`--socket ${np.socket} exists and is not a socket`);
    expect(fs.readFileSync(np.socket, 'utf8')).to.equal('precious');
  });

  it('state and log are private even when their directories already existed open (0755): files 0600, state dir 0700', async () => {
    const np = daemon('10.248.45.0/24');
    fs.mkdirSync(np.stateDir, { recursive: true, mode: 0o755 });
    fs.chmodSync(np.stateDir, 0o755);
    fs.writeFileSync(np.logFile, '', { mode: 0o644 });
    fs.chmodSync(np.logFile, 0o644);
    await np.start();
    await pods(np, 'private', 1);
    const mode = (f: string) => fs.statSync(f).mode & 0o777;
    expect(mode(np.stateDir)).to.equal(0o700);
    for (const f of fs.readdirSync(np.stateDir)) expect(mode(path.join(np.stateDir, f)), f).to.equal(0o600);
    expect(mode(np.logFile)).to.equal(0o600);
    const asNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'cat', np.logFile, path.join(np.stateDir, 'netplugin.db')], {
      encoding: 'utf8',
    });
    expect(asNobody.status).to.not.equal(0);
    expect(asNobody.stdout).to.equal('');
  });

  it('a flood of half-open connections neither starves ADDs and /healthz nor grows without bound; an oversized body gets the wire error', async () => {
    const np = daemon('10.248.46.0/24', { extraArgs: ['--max-connections', '256'] });
    await np.start();
    // a pooled client's keep-alive connection, open before the flood: the connections that never sent a
    // request make room first
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.get({ socketPath: np.socket, path: '/healthz', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on('error', reject);
      });
    expect((await get()).status).to.equal(200);
    const flood: net.Socket[] = [];
    // a connect the socket's accept queue refused outright: a runtime's exec would have failed the same way
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const s = net.connect(np.socket);
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EAGAIN') refused++;
      });
      s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHo'));
      flood.push(s);
    }
    try {
      await waitFor('the flood to connect', () => flood.filter((s) => s.readyState !== 'opening').length === flood.length);
      expect(refused, 'connects refused by a full accept queue').to.equal(0);
      expect(await get(), 'the keep-alive connection opened before the flood').to.deep.equal({ status: 200, reused: true });
      const t0 = Date.now();
      expect(await np.client.healthy()).to.equal(true);
      const [p] = await pods(np, 'flooded', 1);
      expect(Date.now() - t0).to.be.lessThan(10_000);
      const fds = fs.readdirSync(`/proc/${np.pid}/fd`).length;
      expect(fds, 'open fds in the daemon').to.be.lessThan(256 + 64);
      expect((await del(np, p.id, p.ns)).status).to.equal(0);
    } finally {
      for (const s of flood) s.destroy();
      agent.destroy();
    }
    const big = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ socketPath: np.socket, path: '/ContivCNI.AddPod', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(Buffer.alloc(MAX_BODY + 4096, 0x20));
    });
    expect(big.status).to.equal(413);
    expect(JSON.parse(big.body)).to.include({ result: ErrorCode.Decode });
    expect(await np.client.healthy()).to.equal(true);
  });

  it('the ownership mark on a live veth names its attachment', async () => {
    const np = daemon('10.248.47.0/24');
    await np.start();
    const [p] = await pods(np, 'marked', 1);
    const veth = (await np.endpoints())[0].hostVeth;
    const alias = fs.readFileSync(`/sys/class/net/${veth}/ifalias`, 'utf8').trim();
    expect(parseMark(alias)).to.include({ containerId: p.id, ifname: 'eth0', ipv4: p.ip.split('/')[0] });
  });
});
