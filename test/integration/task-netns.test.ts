// A request naming /proc/<pid>/task/<tid>/ns/net where thread <tid> is in a pod's namespace and the process's
// main thread in the host's. The daemon verifies the namespace by the path's inode (the thread's), so it must
// also create the pod's link there, by the same identity (the opened file), never by the PID, whose main
// thread is in the host. The daemon runs inside a throwaway namespace standing in for the host, watched by
// `ip monitor link` for the whole request: no eth0 may appear there, not even for a moment.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { TestNetplugin } from '../../testbed/netplugin';
import { links, namedNetns, ROOT, sh, type TestNetns, tryRun, uniq, waitFor } from '../../testbed/sys';

describe('integration: a task-form namespace path (/proc/<pid>/task/<tid>/ns/net)', function () {
  this.timeout(60_000);
  const host = uniq('ctvtaskhost-', 4);
  let np: TestNetplugin;
  let pod: TestNetns;
  let straddler: ChildProcess | undefined;
  let monitor: ChildProcess | undefined;

  before(async () => {
    sh('ip', ['netns', 'add', host]);
    sh('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
    np = new TestNetplugin({ subnet: '10.249.6.0/24', netns: host });
    await np.start();
    pod = namedNetns();
  });
  after(async () => {
    straddler?.kill('SIGKILL');
    monitor?.kill();
    pod.remove();
    await np.destroy();
    tryRun('ip', ['netns', 'del', host]);
  });

  it('wires the namespace of the thread it verified, and creates nothing in the process’s (host) namespace', async () => {
    // a process in the stand-in host namespace with one worker thread moved into the pod's namespace
    const libc = path.join(ROOT, 'dist/src/linux/libc.js');
    const dir = fs.mkdtempSync(path.join(np.dir, 'task-'));
    fs.writeFileSync(
      path.join(dir, 'worker.js'),
      `const { workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const { setns, CLONE_NEWNET } = require(${JSON.stringify(libc)});
      const r = setns(fs.openSync(workerData, 'r'), CLONE_NEWNET);
      if (r.errno) throw new Error('setns errno ' + r.errno);
      process.stdout.write(fs.readlinkSync('/proc/thread-self') + '\\n');
      setInterval(() => {}, 1000);`,
    );
    fs.writeFileSync(
      path.join(dir, 'main.js'),
      `new (require('node:worker_threads').Worker)(${JSON.stringify(path.join(dir, 'worker.js'))}, { workerData: process.argv[2] });
      setInterval(() => {}, 1000);`,
    );
    straddler = spawn('ip', ['netns', 'exec', host, process.execPath, path.join(dir, 'main.js'), pod.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    straddler.stdout!.on('data', (d) => (out += d));
    const threadSelf = await waitFor('the worker to enter the pod namespace', () => /^\d+\/task\/\d+$/m.exec(out)?.[0]);
    const [pid, , tid] = threadSelf.split('/');
    const taskPath = `/proc/${pid}/task/${tid}/ns/net`;
    expect(fs.statSync(taskPath).ino).to.equal(fs.statSync(pod.path).ino);
    expect(fs.statSync(`/proc/${pid}/ns/net`).ino).to.equal(fs.statSync(`/var/run/netns/${host}`).ino);

    monitor = spawn('ip', ['-n', host, '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = '';
    monitor.stdout!.on('data', (d) => (seen += d));
    await new Promise((r) => setTimeout(r, 300));
    const rsp = await np.client.addPod({
      K8S_POD_NAME: 'task',
      K8S_POD_NAMESPACE: 'default',
      K8S_POD_INFRA_CONTAINER_ID: 'task-form',
      CNI_NETNS: taskPath,
      CNI_IFNAME: 'eth0',
      CONTIV_NETNS_INODE: fs.statSync(pod.path).ino,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(rsp.ipaddress).to.match(/^10\.249\.6\./);
    // the pod's eth0 is in the namespace that was verified
    expect(
      links(pod.path)
        .find((l) => l.ifname === 'eth0')
        ?.addr_info?.map((a) => `${a.local}/${a.prefixlen}`),
    ).to.include(rsp.ipaddress);
    // and never appeared in the host's: only the host veth did
    const created = seen.split('\n').filter((l) => / eth0[@:]/.test(l));
    expect(created, seen).to.deep.equal([]);
    expect(seen).to.include(rsp.hostveth!);
    expect(
      sh('ip', ['-n', host, '-o', 'link', 'show'])
        .split('\n')
        .some((l) => / eth0[@:]/.test(l)),
    ).to.equal(false);
    await np.client.delPod({ K8S_POD_INFRA_CONTAINER_ID: 'task-form', CNI_IFNAME: 'eth0', CNI_NETNS: '' });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
