// The adapter never hangs: whatever it waits on (a FIFO for a namespace or a log, a runtime that never
// closes stdin, a netplugin that accepts and never answers), it prints one CNI error and exits within
// timeoutMs plus a small margin; and a DEL whose namespace is unusable still frees the IP.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { listQueuedDels } from '../../src/api/del-queue';
import { ErrorCode } from '../../src/errors';
import { type AdapterRun, cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { adapterLog, BIN, hostLinkNames, namedNetns, type TestNetns, uniq } from '../../testbed/sys';

/** How late the deadline may answer: its own margin plus the exec's start, on a loaded 2-core machine. */
const SLACK_MS = 1500;

function answeredInTime(r: AdapterRun, timeoutMs: number, code: number): void {
  expect(r.killed, 'it hung until the safety kill').to.equal(false);
  expect(r.durationMs).to.be.below(timeoutMs + SLACK_MS);
  expect(r.status).to.equal(1);
  expect(r.json.code, r.stdout).to.equal(code);
  expect(r.stdout.trim().split('\n')).to.have.length(1);
  expect(r.stderr).to.equal('');
}

describe('integration: the adapter never hangs', function () {
  this.timeout(120_000);
  const np = new TestNetplugin({ subnet: '10.249.0.0/24' });
  const made: TestNetns[] = [];
  const fifo = path.join(np.dir, 'a-fifo');
  const conf = (extra: object = {}) => ({ ...np.conf, ...extra });

  before(async () => {
    await np.start();
    spawnSync('mkfifo', [fifo]);
  });
  after(async () => {
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('CNI_NETNS naming a FIFO: ADD and CHECK are refused at once (code 4), nothing is created', async () => {
    const before = hostLinkNames();
    for (const command of ['ADD', 'CHECK']) {
      const r = await runAdapter(cniEnv(command, uniq('fifo'), fifo), conf({ prevResult: { ips: [] } }), undefined, { killAfterMs: 10_000 });
      answeredInTime(r, 0, ErrorCode.InvalidEnv);
      expect(r.json.msg).to.include('is not a namespace file: it is a FIFO');
    }
    expect(hostLinkNames()).to.deep.equal(before);
  });

  it('a DEL whose CNI_NETNS is a FIFO (or a directory, or a socket) still frees the IP and the veth', async () => {
    for (const unusable of [fifo, np.dir, np.socket]) {
      const pod = namedNetns();
      made.push(pod);
      const id = uniq('del-unusable');
      expect((await runAdapter(cniEnv('ADD', id, pod.path), conf())).status).to.equal(0);
      const veth = (await np.endpoints()).find((e) => e.containerId === id)!.hostVeth;
      const r = await runAdapter(cniEnv('DEL', id, unusable), conf(), undefined, { killAfterMs: 10_000 });
      expect(r.status, `${unusable}: ${r.stdout}`).to.equal(0);
      expect((await np.endpoints()).some((e) => e.containerId === id)).to.equal(false);
      expect(hostLinkNames()).to.not.include(veth);
    }
  });

  it('a logFile that is a FIFO with no reader neither blocks nor fails the ADD', async () => {
    const pod = namedNetns();
    made.push(pod);
    const r = await runAdapter(cniEnv('ADD', 'fifo-log', pod.path), conf({ logFile: fifo }), undefined, { killAfterMs: 10_000 });
    expect(r.status, r.stdout).to.equal(0);
    expect((await runAdapter(cniEnv('DEL', 'fifo-log', pod.path), conf({ logFile: fifo }))).status).to.equal(0);
  });

  for (const stdin of ['pipe', 'socketpair'] as const) {
    it(`a config written in two halves 300 ms apart on a ${stdin} is read whole, by ADD and by VERSION`, async () => {
      const pod = namedNetns();
      made.push(pod);
      const id = uniq('slow-stdin');
      const opts = { stdin, secondHalfAfterMs: 300, killAfterMs: 10_000 };
      const add = await runAdapter(cniEnv('ADD', id, pod.path), conf(), undefined, opts);
      expect(add.status, add.stdout + add.stderr).to.equal(0);
      expect(add.durationMs).to.be.above(300);
      expect(add.json.ips).to.have.length(1);
      const version = await runAdapter(cniEnv('VERSION', id, ''), conf(), undefined, opts);
      expect(version.json.supportedVersions, version.stdout).to.include('1.1.0');
      expect((await runAdapter(cniEnv('DEL', id, pod.path), conf())).status).to.equal(0);
    });

    it(`a runtime that never closes stdin (a ${stdin}) gets an error within the config's timeoutMs, from ADD and from VERSION`, async () => {
      for (const command of ['ADD', 'VERSION']) {
        const pod = namedNetns();
        made.push(pod);
        const r = await runAdapter(cniEnv(command, uniq('open-stdin'), pod.path), conf({ timeoutMs: 800 }), undefined, {
          stdin,
          keepStdinOpen: true,
          killAfterMs: 10_000,
        });
        answeredInTime(r, 800, ErrorCode.Io);
        expect(r.json.msg).to.include('did not finish within 800 ms: still waiting on the network configuration on stdin');
      }
    });
  }

  describe('a netplugin that accepts connections and never answers (SIGSTOP)', () => {
    const pod = () => {
      const ns = namedNetns();
      made.push(ns);
      return ns;
    };
    before(() => process.kill(np.pid!, 'SIGSTOP'));
    after(() => process.kill(np.pid!, 'SIGCONT'));

    for (const command of ['ADD', 'CHECK']) {
      it(`${command} with timeoutMs 1000 answers code 11 naming the socket and the timeout, in time`, async () => {
        const r = await runAdapter(cniEnv(command, uniq('stopped'), pod().path), conf({ timeoutMs: 1000, prevResult: { ips: [] } }));
        answeredInTime(r, 1000, ErrorCode.TryAgainLater);
        expect(r.json.msg).to.include(np.socket).and.include('1000 ms');
      });
    }

    it('DEL with timeoutMs 1000 is queued for the netplugin and answered ok, in time', async () => {
      const id = uniq('stopped');
      const r = await runAdapter(cniEnv('DEL', id, pod().path), conf({ timeoutMs: 1000 }));
      expect(r.killed, 'it hung until the safety kill').to.equal(false);
      expect(r.durationMs).to.be.below(1000 + SLACK_MS);
      expect(r.status, r.stdout).to.equal(0);
      expect(r.stdout).to.equal('');
      expect(listQueuedDels(np.socket).map((e) => e.del?.containerId)).to.include(id);
    });

    it('STATUS answers code 50 in time', async () => {
      const r = await runAdapter({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, conf({ cniVersion: '1.1.0', timeoutMs: 1000 }));
      answeredInTime(r, 1000, ErrorCode.PluginNotAvailable);
    });

    it('contivctl endpoints fails with the socket in its message instead of waiting forever', () => {
      const started = Date.now();
      const r = spawnSync(path.join(BIN, 'contivctl'), ['endpoints', '--socket', np.socket], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.include(`netplugin did not answer within 10000 ms on ${np.socket}`);
      expect(Date.now() - started).to.be.below(10_000 + SLACK_MS + 2000);
    });
  });

  // a suite of its own: mocha runs a suite's tests before its nested suites, and this one comes after SIGCONT
  describe('then SIGCONT', () => {
    it('the daemon is healthy, and what the timed-out ADDs asked for was not done for them', async () => {
      // their adapters exited, so the /proc/<pid>/ns/net they named is gone: nothing can have been wired
      const r = await runAdapter({ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, conf({ cniVersion: '1.1.0' }));
      expect(r.status, r.stdout).to.equal(0);
      const stale = (await np.endpoints()).filter((e) => e.containerId.startsWith('stopped'));
      expect(stale).to.deep.equal([]);
    });
  });
});

describe('integration: failures before the config parses are logged', () => {
  const np = new TestNetplugin({ subnet: '10.249.1.0/24' });
  after(() => np.destroy());

  it('a config that is not JSON is logged to CONTIVK8S_ERROR_LOG (default /var/log/contiv/contivk8s.log)', async () => {
    const errorLog = path.join(np.dir, 'errors.log');
    const r = await runAdapter({ ...cniEnv('ADD', 'garbled', '/var/run/netns/none'), CONTIVK8S_ERROR_LOG: errorLog }, '{"cniVersion": "1.0.0", "name": ');
    expect(r.json.code).to.equal(ErrorCode.Decode);
    const [line] = adapterLog(errorLog);
    expect(line).to.include({ level: 'error', command: 'ADD', containerId: 'garbled', code: ErrorCode.Decode, outcome: 'error' });
  });

  it('a config that parses but is refused is logged to the logFile it names', async () => {
    const r = await runAdapter(cniEnv('DEL', 'refused', ''), { cniVersion: '1.0.0', name: 'x', timeoutMs: 'soon', logFile: np.cniLog });
    expect(r.json.code).to.equal(ErrorCode.InvalidConfig);
    const [line] = adapterLog(np.cniLog);
    expect(line).to.include({ level: 'error', command: 'DEL', containerId: 'refused', code: ErrorCode.InvalidConfig });
    expect(line.details).to.include('timeoutMs');
    expect(fs.existsSync(np.cniLog)).to.equal(true);
  });
});
