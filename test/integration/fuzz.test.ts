// Hostile input to the real adapter against a real netplugin, generated from a fixed seed (CTV_FUZZ_SEED to
// explore others): mutated configs, random commands, namespace paths that are not namespaces, bad interface
// names and CNI_ARGS, missing variables, and sockets that are nothing, files, directories, silent, garbled or
// cut off. Every case must answer in time, exit 0 or 1 with at most one JSON document on stdout (an error
// has an integer code and a message), print no stack trace; afterwards the daemon is healthy and the node
// is as it was.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import { type AdapterRun, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { hostLinkNames, namedNetns, type TestNetns } from '../../testbed/sys';

const SEED = Number(process.env.CTV_FUZZ_SEED ?? 20261123);
const CASES = 300;

/** mulberry32: a small deterministic PRNG, so that a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  name: string;
  env: Record<string, string>;
  stdin: string;
}

describe(`integration: fuzzing the adapter (seed ${SEED}, ${CASES} cases)`, function () {
  this.timeout(600_000);
  const np = new TestNetplugin({ subnet: '10.249.8.0/24', subnet6: 'fd00:249:8::/64' });
  let pod: TestNetns;
  const dir = np.dir;
  const servers: net.Server[] = [];
  const paths = {
    fifo: path.join(dir, 'fifo'),
    loop: path.join(dir, 'loop'),
    regular: path.join(dir, 'regular'),
    silent: path.join(dir, 'silent.sock'),
    garbage: path.join(dir, 'garbage.sock'),
    cutoff: path.join(dir, 'cutoff.sock'),
  };

  async function listen(file: string, onConnection: (c: net.Socket) => void): Promise<void> {
    const server = net.createServer(onConnection);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(file, resolve));
  }

  before(async () => {
    await np.start();
    pod = namedNetns();
    spawnSync('mkfifo', [paths.fifo]);
    fs.symlinkSync(paths.loop, paths.loop);
    fs.writeFileSync(paths.regular, 'not a socket');
    await listen(paths.silent, () => undefined);
    await listen(paths.garbage, (c) => c.once('data', () => c.end('garbage, not HTTP\r\n\r\n')));
    await listen(paths.cutoff, (c) =>
      c.once('data', () => {
        c.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"result":0,"ipaddr');
        c.destroy();
      }),
    );
  });
  after(async () => {
    for (const s of servers) s.close();
    pod?.remove();
    await np.destroy();
  });

  const snapshot = async () => ({
    hostLinks: hostLinkNames().sort(),
    netns: fs.readdirSync('/var/run/netns').sort(),
    endpoints: await np.endpoints(),
    bridgePorts: np.bridgePorts(),
  });

  /** A case's environment, short enough to read in a failure. */
  const shortened = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.slice(0, 60)]));

  function generate(): Case[] {
    const rnd = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const int = (n: number) => Math.floor(rnd() * n);
    const garbageValues = [null, true, 0, -1, 1.5, 2 ** 53, '', 'x', '/', [], [1, 'a'], {}, { a: { b: [] } }, 'é', '\u0000'];
    const netnsPaths = () => [
      pod.path,
      pod.path,
      '/dev/null',
      dir,
      paths.fifo,
      np.socket,
      '/proc/self/ns/user',
      '/proc/self/ns/net',
      `/proc/${np.pid}/ns/net`,
      paths.loop,
      `/${'a'.repeat(5000)}`,
      'relative/path',
      '',
      '/proc/999999999/ns/net',
      '/var/run/netns/does-not-exist',
      `${pod.path}/..`,
    ];
    const sockets = () => [
      np.socket,
      np.socket,
      np.socket,
      paths.regular,
      dir,
      path.join(dir, 'nothing.sock'),
      paths.silent,
      paths.garbage,
      paths.cutoff,
      '@abstract',
      'relative.sock',
    ];
    const ifnames = ['eth0', 'eth0', 'net1', 'et/h0', 'eth 0', 'eth0123456789abcd', 'éth0', 'ethé0123456789', '.', '..', '', 'a:b', '\t'];
    const cniArgs = () =>
      pick([
        'IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME=p',
        'K8S_POD_NAME',
        '=value',
        'UNKNOWN=1',
        ';;;',
        `K8S_POD_NAME=${'x'.repeat(100_000)}`,
        'K8S_POD_NAME=a=b=c;IgnoreUnknown=true',
      ]);
    const mutateConfig = (conf: Record<string, unknown>): string => {
      const text = JSON.stringify(conf);
      switch (int(8)) {
        case 0:
          return text.slice(0, int(text.length)); // truncated
        case 1:
          return '['.repeat(100_000 + int(100_000)); // deeply nested
        case 2:
          return JSON.stringify({ ...conf, junk: 'x'.repeat(5 * 1024 * 1024) }); // huge
        case 3: {
          const key = pick([
            'cniVersion',
            'name',
            'type',
            'socket',
            'logFile',
            'logLevel',
            'timeoutMs',
            'args',
            'runtimeConfig',
            'prevResult',
            'cni.dev/valid-attachments',
            'cni.dev/attachments',
          ]);
          return JSON.stringify({ ...conf, [key]: pick(garbageValues) }); // a wrong type for one key
        }
        case 4:
          return JSON.stringify({
            ...conf,
            prevResult: pick([
              { ips: 'x' },
              { interfaces: [{}] },
              { ips: [{ address: 5 }] },
              [],
              'garbage',
              { ips: [{ address: '10.0.0.1/24', interface: 99 }] },
            ]),
          });
        case 5:
          return Buffer.from(Array.from({ length: int(300) }, () => int(256))).toString('latin1'); // random bytes
        case 6:
          return '';
        default:
          return text;
      }
    };
    const cases: Case[] = [];
    const dimensions = ['command', 'netns', 'ifname', 'containerId', 'args', 'missing', 'socket', 'stdin', 'cniVersion', 'all'] as const;
    for (let i = 0; i < CASES; i++) {
      // one dimension made hostile on a valid call, so each input reaches the code that judges it; 'all' mixes them
      const dim = pick(dimensions);
      const hostile = (d: (typeof dimensions)[number]) => dim === d || (dim === 'all' && rnd() < 0.5);
      const command = hostile('command')
        ? pick(['add', 'FROB', '', 'ADD ', 'VERSION\t', 'DEL;ADD'])
        : pick(['ADD', 'ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS']);
      const env: Record<string, string> = {
        CNI_COMMAND: command,
        CNI_CONTAINERID: hostile('containerId') ? pick(['', '-leading-dash', 'has space', 'x'.repeat(5000), 'ünïcode', '../../etc']) : `fuzz-${i}`,
        CNI_NETNS: hostile('netns') ? pick(netnsPaths()) : pod.path,
        CNI_IFNAME: hostile('ifname') ? pick(ifnames) : 'eth0',
        CNI_PATH: '/opt/cni/bin',
        CNI_ARGS: hostile('args') ? cniArgs() : 'IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME=p',
      };
      if (hostile('missing')) delete env[pick(Object.keys(env))];
      const socket = hostile('socket') ? pick(sockets()) : np.socket;
      const conf: Record<string, unknown> = {
        cniVersion: hostile('cniVersion') ? pick(['0.4.0', '0.3.1', '0.3.0', '9.9.9', '1.1', 1.1, '']) : '1.1.0',
        name: 'fuzz',
        type: 'contivk8s',
        socket,
        timeoutMs: 700,
        logFile: np.cniLog,
        ...(command === 'CHECK'
          ? { prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.249.8.2/24', interface: 0 }] } }
          : {}),
        ...(command === 'GC' ? { 'cni.dev/valid-attachments': pick([[], null, [{ containerID: 'kept', ifname: 'eth0' }]]) } : {}),
      };
      const stdin = hostile('stdin') ? mutateConfig(conf) : JSON.stringify(conf);
      cases.push({
        name: `#${i} (${dim}) ${JSON.stringify(shortened(env))} socket=${socket} stdin=${JSON.stringify(stdin.slice(0, 80))}`,
        env,
        stdin,
      });
    }
    return cases;
  }

  function judge(r: AdapterRun): string | undefined {
    if (r.killed) return 'hung (killed by the safety timer)';
    if (r.durationMs > 8000) return `took ${Math.round(r.durationMs)} ms`;
    if (r.status !== 0 && r.status !== 1) return `exit status ${r.status}`;
    if (r.stderr !== '') return `stderr: ${r.stderr.slice(0, 300)}`;
    const docs = r.stdout.split('\n').filter((l) => l.trim() !== '');
    if (docs.length > 1) return `${docs.length} documents on stdout`;
    if (r.status === 1) {
      if (docs.length !== 1) return 'an error without its JSON document';
      const e = JSON.parse(docs[0]) as { code?: unknown; msg?: unknown };
      if (!Number.isInteger(e.code) || typeof e.msg !== 'string' || e.msg === '') return `malformed error ${docs[0].slice(0, 200)}`;
      if (/\n\s+at |\bat \/\$bunfs/.test(e.msg)) return `a stack trace in msg: ${e.msg.slice(0, 200)}`;
    } else if (docs.length === 1) {
      JSON.parse(docs[0]);
    }
    return undefined;
  }

  it('every case answers in time with one well-formed result or error; the daemon stays healthy and the node unchanged', async () => {
    const before = await snapshot();
    const failures: string[] = [];
    for (const c of generate()) {
      const r = await runAdapter(c.env, c.stdin, undefined, { killAfterMs: 15_000 });
      const problem = judge(r);
      if (problem) failures.push(`${c.name}: ${problem}`);
      // a case that happened to be a valid ADD is undone as a runtime would, with its DEL
      if (r.status === 0 && c.env.CNI_COMMAND === 'ADD') {
        const del = await runAdapter({ ...c.env, CNI_COMMAND: 'DEL' }, { cniVersion: '1.0.0', name: 'fuzz', socket: np.socket });
        if (del.status !== 0) failures.push(`${c.name}: its DEL failed: ${del.stdout}`);
      }
    }
    expect(failures, failures.slice(0, 10).join('\n')).to.deep.equal([]);
    expect(await np.client.healthy()).to.equal(true);
    expect(await snapshot()).to.deep.equal(before);
  });
});
