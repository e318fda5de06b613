// The adapter prints only answers it can trust. Against fake daemons on the socket: malformed addresses,
// gateways and MACs, a missing prefix, thousands of addresses in one field, a huge interface name, an endless
// body, a gzip bomb and a redirect. Each is one CNI error (code 5) on stdout and a non-zero exit, quickly,
// and a redirect is never followed. contiv's own answer (no host veth named) is a valid result.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { inNetns, namedNetns, type TestNetns, uniq } from '../../testbed/sys';

/** A fake netplugin on a unix socket: every request is answered by `respond`. */
async function fakeDaemon(dir: string, respond: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const socket = path.join(dir, `${uniq('fake-')}.sock`);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => respond(req, res));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, close: () => new Promise<void>((r) => server.close(() => r())).finally(() => server.closeAllConnections()) };
}

const json = (status: number, body: unknown) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const good = { result: 0, endpointid: 'x/eth0', ipaddress: '10.9.0.5/24', gateway: '10.9.0.1', mac: '0a:58:0a:09:00:05', hostveth: 'ctv0123456789a' };

describe('integration: the adapter trusts no answer it has not checked', function () {
  this.timeout(60_000);
  const dir = fs.mkdtempSync('/tmp/ctvans-');
  let pod: TestNetns;
  before(() => {
    pod = namedNetns();
  });
  after(() => {
    pod.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function addAgainst(respond: Parameters<typeof fakeDaemon>[1], conf: object = {}) {
    const fake = await fakeDaemon(dir, respond);
    try {
      return await runAdapter(cniEnv('ADD', 'answers', pod.path), { cniVersion: '1.0.0', name: 'fake', type: 'contivk8s', socket: fake.socket, ...conf });
    } finally {
      await fake.close();
    }
  }

  for (const [what, body, field] of [
    ['an address that is not one', { ...good, ipaddress: '999.1.1.1/99' }, 'ipaddress'],
    ['an address without its prefix', { ...good, ipaddress: '10.9.0.5' }, 'ipaddress'],
    ['3000 addresses in one field', { ...good, ipaddress: Array.from({ length: 3000 }, (_, i) => `10.9.${i >> 8}.${i & 255}/24`).join(',') }, 'ipaddress'],
    // past the answer's size cap: refused while it is read
    ['5000 addresses in one field', { ...good, ipaddress: Array.from({ length: 5000 }, (_, i) => `10.9.${i >> 8}.${i & 255}/24`).join(',') }, 'bytes'],
    ['a gateway that is not an address', { ...good, gateway: 'not-an-ip' }, 'gateway'],
    ['a MAC that is not one', { ...good, mac: 'zz' }, 'mac'],
    ['an IPv6 address that is not one', { ...good, ipv6address: 'fd00::zz/64' }, 'ipv6address'],
    ['an interface name of 20 MB', { ...good, hostveth: 'x'.repeat(20 << 20) }, ''],
    ['an interface name with a slash', { ...good, hostveth: 'a/b' }, 'hostveth'],
  ] as const) {
    it(`refuses ${what}`, async () => {
      const r = await addAgainst(json(200, body));
      expect(r.status, r.stdout.slice(0, 300)).to.equal(1);
      expect(r.json.code).to.equal(ErrorCode.Io);
      if (field) expect(`${r.json.msg} ${r.json.details}`).to.include(field);
      expect(r.stdout.length).to.be.lessThan(4096);
      expect(r.stdout.trim().split('\n')).to.have.length(1);
    });
  }

  it('refuses an endless body at its cap, at once, without growing', async () => {
    const r = await addAgainst((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const chunk = Buffer.alloc(64 << 10, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.write('{"result":0,"errmsg":"');
      pump();
    });
    expect(r.json.code, r.stdout).to.equal(ErrorCode.Io);
    expect(r.json.msg).to.match(/more than \d+ bytes: refused/);
    expect(r.durationMs).to.be.lessThan(5_000);
  });

  it('refuses a compressed body without inflating it (a gzip bomb)', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 << 20, 0x20));
    const r = await addAgainst((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': bomb.length });
      res.end(bomb);
    });
    expect(r.json.code, r.stdout).to.equal(ErrorCode.Io);
    expect(r.json.msg).to.match(/gzip-encoded body: refused/);
  });

  it('never follows a redirect (it would re-send the pod request from inside the pod namespace)', async () => {
    inNetns(pod.path, 'ip', ['link', 'set', 'lo', 'up']);
    // a listener where the redirect points, inside the pod namespace, where the adapter's connection would come from
    const port = 18000 + Math.floor(Math.random() * 1000);
    const listener = await new Promise<{ connections: () => number; close: () => void }>((resolve) => {
      const child = require('node:child_process').spawn(
        'nsenter',
        [
          `--net=${pod.path}`,
          process.execPath,
          '-e',
          `let n=0; require('net').createServer((s)=>{n++;console.log('hit');s.destroy()}).listen(${port},'127.0.0.1',()=>console.log('up'))`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('up')) resolve({ connections: () => out.split('hit').length - 1, close: () => child.kill() });
      });
    });
    try {
      const r = await addAgainst((_req, res) => {
        res.writeHead(307, { Location: `http://127.0.0.1:${port}/ContivCNI.AddPod`, 'Content-Length': 0 });
        res.end();
      });
      expect(r.json.code, r.stdout).to.equal(ErrorCode.Io);
      expect(r.json.msg).to.match(/redirect \(HTTP 307\): refused/);
      await new Promise((res) => setTimeout(res, 300));
      expect(listener.connections()).to.equal(0);
    } finally {
      listener.close();
    }
  });

  it("accepts contiv's own answer, which names no host veth: the result lists the pod interface alone", async () => {
    const { hostveth: _, ...contiv } = good;
    const r = await addAgainst(json(200, contiv));
    expect(r.status, r.stdout).to.equal(0);
    expect(r.json.interfaces).to.deep.equal([{ name: 'eth0', mac: good.mac, sandbox: pod.path }]);
    expect(r.json.ips).to.deep.equal([{ interface: 0, address: '10.9.0.5/24', gateway: '10.9.0.1' }]);
  });

  it('refuses an answer that ignores a static request (a netplugin that does not know it)', async () => {
    const r = await addAgainst(json(200, good), { runtimeConfig: { ips: ['10.9.0.77/24'] } });
    expect(r.json.code, r.stdout).to.equal(ErrorCode.Io);
    expect(r.json.msg).to.equal('netplugin answered AddPod without the requested IP 10.9.0.77');
  });

  it('a socket path that is a TCP-less dead end is still code 11, not a crash', async () => {
    const dead = path.join(dir, 'dead.sock');
    const s = net.createServer().listen(dead);
    s.close();
    const r = await runAdapter(cniEnv('ADD', 'answers', pod.path), { cniVersion: '1.0.0', name: 'fake', type: 'contivk8s', socket: dead });
    expect(r.json.code).to.equal(ErrorCode.TryAgainLater);
  });
});
