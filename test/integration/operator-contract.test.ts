// The contract operators expect from a node agent's CLIs (kubectl, cilium and calicoctl are the models):
// --version everywhere and in /healthz and the first log line; exit 0 clean, 1 findings, 2 usage or error;
// -o table|wide|json|yaml; errors that lead with what to do; flags checked before anything is touched;
// commands that need root saying so; a TCP health listener for kubelet's probes; bounded logs; completion.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { makeCniDirs } from '../../testbed/kubelet/cni-dirs';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, finished, namedNetns, ROOT, type TestNetns } from '../../testbed/sys';

const VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const run = (bin: string, args: string[], wrap: string[] = []) => {
  const [cmd, ...rest] = [...wrap, path.join(BIN, bin), ...args];
  const r = spawnSync(cmd, rest, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};
const get = (port: number, p: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });

describe('integration: the operator contract', function () {
  this.timeout(120_000);
  const healthPort = 19000 + Math.floor(Math.random() * 1000);
  const np = new TestNetplugin({
    subnet: '10.246.1.0/24',
    extraArgs: ['--health-listen', `127.0.0.1:${healthPort}`, '--log-max-size', '0.01', '--log-max-files', '2'],
  });
  const made: TestNetns[] = [];
  before(() => np.start());
  after(async () => {
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('--version on all three binaries; the version in /healthz and in the daemon’s first log line', async () => {
    expect(run('contivk8s', ['--version']).stdout.trim()).to.equal(`contivk8s ${VERSION}`);
    expect(run('netplugin', ['--version']).stdout.trim()).to.equal(VERSION);
    expect(run('contivctl', ['--version']).stdout.trim()).to.equal(VERSION);
    expect((await np.client.health()).version).to.equal(VERSION);
    const first = JSON.parse(fs.readFileSync(np.logFile, 'utf8').split('\n')[0]);
    expect(first).to.include({ message: 'netplugin starting', version: VERSION });
  });

  it('exit codes: 0 clean, 1 findings, 2 usage or error; an error leads with what to do', () => {
    expect(run('contivctl', ['endpoints', '--socket', np.socket]).status).to.equal(0);
    for (const args of [['nope'], ['endpoints', '--frobnicate'], ['endpoints', '-o', 'xml'], ['install-cni', '--chain', 'flannel'], ['completion', 'fish']]) {
      const r = run('contivctl', args);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(/error|expected|not one of/);
    }
    const down = run('contivctl', ['endpoints', '--socket', path.join(np.dir, 'nothing.sock')]);
    expect(down.status).to.equal(2);
    expect(down.stderr.split('\n')[0]).to.equal('contivctl: start the netplugin, or point --socket at the socket it serves');
    expect(down.stderr).to.include('netplugin is not listening on');
  });

  it('-o table|wide|json|yaml on endpoints, leaks, doctor and del-queue; --json is -o json', async () => {
    const pod = namedNetns();
    made.push(pod);
    expect((await runAdapter(cniEnv('ADD', 'formats', pod.path), np.conf)).status).to.equal(0);
    const json = JSON.parse(run('contivctl', ['endpoints', '--socket', np.socket, '-o', 'json']).stdout);
    expect(json.map((e: { containerId: string }) => e.containerId)).to.deep.equal(['formats']);
    expect(JSON.parse(run('contivctl', ['endpoints', '--socket', np.socket, '--json']).stdout)).to.deep.equal(json);
    expect(parseYaml(run('contivctl', ['endpoints', '--socket', np.socket, '-o', 'yaml']).stdout)).to.deep.equal(json);
    const table = run('contivctl', ['endpoints', '--socket', np.socket]).stdout;
    const wide = run('contivctl', ['endpoints', '--socket', np.socket, '-o', 'wide']).stdout;
    expect(table.split('\n')[0])
      .to.match(/^CONTAINER\s+IFNAME\s+IPV4/)
      .and.not.include('MAC');
    expect(wide.split('\n')[0]).to.include('MAC').and.include('ORIGIN');
    for (const cmd of [['leaks'], ['doctor', '--bin-dir', makeCniDirs(np.dir, { socket: np.socket }).binDir], ['del-queue']]) {
      const y = parseYaml(run('contivctl', [...cmd, '--socket', np.socket, '-o', 'yaml']).stdout);
      const j = JSON.parse(run('contivctl', [...cmd, '--socket', np.socket, '-o', 'json']).stdout);
      expect(y, cmd[0]).to.deep.equal(j);
    }
    expect((await runAdapter(cniEnv('DEL', 'formats', pod.path), np.conf)).status).to.equal(0);
  });

  it('the netplugin checks every flag before touching anything, naming the flag (exit 2)', () => {
    for (const [flag, value, says] of [
      ['--subnet', 'bogus', /--subnet <cidr>' argument 'bogus' is invalid/],
      ['--log-level', 'verbose', /Allowed choices are error, warn, info, debug/],
      ['--health-listen', 'nope', /--health-listen <ip:port>' argument 'nope' is invalid/],
      ['--bridge', 'br/0', /--bridge <name>' argument 'br\/0' is invalid/],
      ['--gateway', '10.9.9.9', /--gateway 10\.9\.9\.9: gateway 10\.9\.9\.9 is not a host address/],
      ['--store', 'zookeeper', /Allowed choices are embedded, etcd/],
    ] as const) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctvflags-'));
      try {
        const args = ['--socket', path.join(dir, 'run/sock'), '--state-dir', path.join(dir, 'state'), '--log-file', path.join(dir, 'log'), flag, value];
        const r = run('netplugin', args);
        expect(r.status, `${flag} ${value}: ${r.stderr}`).to.equal(2);
        expect(r.stderr).to.match(says);
        expect(fs.readdirSync(dir), `${flag} ${value} touched the node`).to.deep.equal([]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('leaks and doctor run as non-root say they need root (exit 2), instead of reporting what they cannot see', () => {
    for (const cmd of ['leaks', 'doctor']) {
      const r = run('contivctl', [cmd, '--socket', np.socket], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
      expect(r.status, r.stdout).to.equal(2);
      expect(r.stderr).to.include(`run it as root (sudo contivctl ${cmd})`).and.include(`contivctl ${cmd} needs root`);
      expect(r.stdout).to.equal('');
    }
  });

  it('--health-listen answers GET /healthz over TCP with the daemon’s health, and nothing else', async () => {
    const ok = await get(healthPort, '/healthz');
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.body)).to.include({ status: 'ok', version: VERSION, bridge: np.bridge });
    expect((await get(healthPort, '/endpoints')).status).to.equal(404);
  });

  it("the daemon's log rotates at --log-max-size, keeping --log-max-files", async () => {
    const pod = namedNetns();
    made.push(pod);
    for (let i = 0; i < 40; i++) {
      expect((await runAdapter(cniEnv('ADD', `rot-${i}`, pod.path), np.conf)).status).to.equal(0);
      expect((await runAdapter(cniEnv('DEL', `rot-${i}`, pod.path), np.conf)).status).to.equal(0);
    }
    const base = path.basename(np.logFile, '.log');
    const logs = fs.readdirSync(np.dir).filter((f) => f.startsWith(base));
    expect(logs.sort()).to.deep.equal(['netplugin.log', 'netplugin1.log', 'netplugin2.log']);
    for (const f of logs) expect(fs.statSync(path.join(np.dir, f)).size, f).to.be.below(0.01 * 2 ** 20 + 4096);
  });

  it("the adapter's log rotates at logFileMaxSize under 100 concurrent execs: at most logFileMaxFiles old files, no torn line, no lock left", async () => {
    const log = path.join(np.dir, 'adapter-rot.log');
    const conf = { ...np.conf, logFile: log, logFileMaxSize: 0.005, logFileMaxFiles: 2 };
    // CHECK without prevResult: refused before any namespace is touched, and logged
    const runs = await Promise.all(Array.from({ length: 100 }, (_, i) => runAdapter(cniEnv('CHECK', `r${i}`, '/proc/self/ns/net'), conf)));
    expect(runs.every((r) => r.status === 1)).to.equal(true);
    const files = fs.readdirSync(np.dir).filter((f) => f.startsWith('adapter-rot.log'));
    // the current file is absent when the last line written was the one that rotated it away
    expect(files.sort()).to.include.members(['adapter-rot.log.1', 'adapter-rot.log.2']);
    expect(
      files.filter((f) => !['adapter-rot.log', 'adapter-rot.log.1', 'adapter-rot.log.2'].includes(f)),
      'old files beyond 2, or a lock',
    ).to.deep.equal([]);
    for (const f of files) {
      const text = fs.readFileSync(path.join(np.dir, f), 'utf8');
      for (const line of text.trim().split('\n')) expect(() => JSON.parse(line), `${f}: ${line}`).to.not.throw();
      expect(fs.statSync(path.join(np.dir, f)).mode & 0o777, f).to.equal(0o640);
    }
  });

  it('bash completion completes commands, subcommands, flags and -o values; every command has examples', async () => {
    const complete = async (words: string[]) => {
      const script =
        `source <(${path.join(BIN, 'contivctl')} completion bash); ` +
        `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _contivctl; echo "\${COMPREPLY[@]}"`;
      return (await finished(spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }))).stdout.trim();
    };
    expect(await complete(['contivctl', 'le'])).to.equal('leaks');
    expect(await complete(['contivctl', 'leaks', '--so'])).to.equal('--socket');
    expect(await complete(['contivctl', 'leaks', '--socket', '/x', '--f'])).to.equal('--fix');
    expect((await complete(['contivctl', 'endpoints', '-o', ''])).split(' ')).to.deep.equal(['table', 'wide', 'json', 'yaml']);
    expect(await complete(['contivctl', 'cluster', 're'])).to.equal('remove-node');
    expect(run('contivctl', ['completion', 'zsh']).stdout).to.match(/^#compdef contivctl/);
    for (const cmd of ['endpoints', 'install-cni', 'doctor', 'leaks', 'del-queue', 'completion']) {
      expect(run('contivctl', [cmd, '--help']).stdout, cmd).to.match(/Examples:\n {2}\$ (contivctl|source)/);
    }
  });

  it('doctor reports skew between the installed plugin and the running netplugin', () => {
    const dirs = makeCniDirs(path.join(np.dir, 'skew'), { socket: np.socket });
    fs.rmSync(path.join(dirs.binDir, 'contivk8s'));
    fs.writeFileSync(path.join(dirs.binDir, 'contivk8s'), '#!/bin/sh\necho contivk8s 0.0.1\n', { mode: 0o755 });
    const r = run('contivctl', ['doctor', '--socket', np.socket, '--bin-dir', dirs.binDir, '--conf-dir', dirs.confDir, '-o', 'json']);
    const check = JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === 'plugin and netplugin versions');
    expect(check).to.include({ status: 'warn', detail: `skew: the installed plugin is 0.0.1, the running netplugin ${VERSION}` });
  });
});
