// contivctl doctor and leaks on the real node: real daemons with real capability sets and mount
// namespaces, and a real seeded leak (a bind-mounted namespace with no process holding a duplicate IP).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Check } from '../../src/contivctl/doctor';
import type { Leak } from '../../src/contivctl/leaks';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { type CniDirs, makeCniDirs } from '../../testbed/kubelet/cni-dirs';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, hostLinkNames, namedNetns, ping, processNetns, sh, type TestNetns, tryRun, uniq, waitFor } from '../../testbed/sys';

function contivctl(args: string[], wrap: string[] = []): { status: number; json: any; stdout: string; stderr: string } {
  const [cmd, ...rest] = [...wrap, path.join(BIN, 'contivctl'), ...args, '--json'];
  const r = spawnSync(cmd, rest, { encoding: 'utf8' });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}

const inodeOf = (p: string) => fs.statSync(p).ino;

/**
 * A live pod (the netplugin gives it an address) and the seed of a leak: a namespace kept only by a bind mount
 * at `mountFile` after its only process died, holding the same address.
 */
async function seedLeak(np: TestNetplugin, id: string, mountFile: string, made: TestNetns[]) {
  const pod = await processNetns();
  made.push(pod);
  const add = await runAdapter(cniEnv('ADD', id, pod.path), np.conf);
  expect(add.status, add.stdout).to.equal(0);
  const ip: string = add.json.ips[0].address.split('/')[0];
  const doomed = await processNetns();
  made.push(doomed);
  fs.writeFileSync(mountFile, '');
  sh('mount', ['--bind', doomed.path, mountFile]);
  const leakedInode = inodeOf(mountFile);
  for (const cmd of [
    ['link', 'add', 'seed0', 'type', 'veth', 'peer', 'name', 'seed1'],
    ['addr', 'add', `${ip}/24`, 'dev', 'seed0'],
    ['link', 'set', 'seed0', 'up'],
  ]) {
    sh('nsenter', [`--net=${mountFile}`, '--', 'ip', ...cmd]);
  }
  doomed.remove();
  await waitFor('the seeded namespace to lose its process', () => !fs.existsSync(`/proc/${doomed.pid}`));
  return { pod, ip, veth: add.json.interfaces[0].name as string, leakedInode };
}

describe('integration: contivctl doctor', () => {
  const started: TestNetplugin[] = [];
  const check = (checks: Check[], name: string) => checks.find((c) => c.name === name)!;

  async function netplugin(
    subnet: string,
    wrap?: string[],
  ): Promise<{ np: TestNetplugin; cni: CniDirs; doctor: (wrapDoctor?: string[]) => ReturnType<typeof contivctl> }> {
    const np = new TestNetplugin({ subnet, wrap });
    started.push(np);
    await np.start();
    const cni = makeCniDirs(np.dir, { socket: np.socket });
    return { np, cni, doctor: (w = []) => contivctl(['doctor', '--socket', np.socket, '--bin-dir', cni.binDir, '--conf-dir', cni.confDir], w) };
  }
  after(async () => {
    for (const np of started) await np.destroy();
  });

  it('passes on a healthy node: every check ok (ip_forward may only warn), exit 0', async () => {
    const { doctor } = await netplugin('10.250.4.0/24');
    const r = doctor();
    expect(r.status, r.stdout).to.equal(0);
    expect(r.json.ok).to.equal(true);
    expect(r.json.checks.filter((c: Check) => c.status === 'fail')).to.deep.equal([]);
    expect(r.json.checks.map((c: Check) => c.name)).to.include.members([
      'netplugin capabilities',
      'host PID namespace',
      'netns mount propagation',
      'CNI config',
      'plugin binary',
      'bridge and gateway',
    ]);
  });

  it('names the capabilities a netplugin started without SYS_PTRACE and SYS_ADMIN lacks, and the fix', async () => {
    const { doctor } = await netplugin('10.250.5.0/24', ['setpriv', '--inh-caps=-sys_ptrace,-sys_admin', '--bounding-set=-sys_ptrace,-sys_admin', '--']);
    const r = doctor();
    expect(r.status).to.equal(1);
    const c = check(r.json.checks, 'netplugin capabilities');
    expect(c.status).to.equal('fail');
    expect(c.detail)
      .to.match(/lacks CAP_SYS_PTRACE/)
      .and.match(/lacks CAP_SYS_ADMIN/)
      .and.not.match(/NET_ADMIN/);
    expect(c.fix).to.equal('add to the netplugin container: securityContext.capabilities.add: [SYS_PTRACE, SYS_ADMIN]');
  });

  it('run itself without SYS_PTRACE, says it cannot see the netplugin for that reason', async () => {
    const { doctor } = await netplugin('10.250.6.0/24');
    const r = doctor(['setpriv', '--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', '--']);
    expect(r.status).to.equal(1);
    expect(check(r.json.checks, 'contivctl capabilities').detail).to.match(/contivctl lacks CAP_SYS_PTRACE/);
    expect(check(r.json.checks, 'netplugin process').detail).to.match(/CAP_SYS_PTRACE/);
  });

  it('a netplugin in a private mount namespace fails the propagation check (HostToContainer)', async () => {
    const { doctor } = await netplugin('10.250.9.0/24', ['unshare', '--mount', '--propagation', 'private', '--']);
    const r = doctor();
    const c = check(r.json.checks, 'netns mount propagation');
    expect(c.status, c.detail).to.equal('fail');
    expect(c.fix).to.match(/mountPropagation: HostToContainer/);
  });

  it('a netplugin in its own PID namespace fails the hostPID check', async () => {
    const { doctor } = await netplugin('10.250.10.0/24', ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', '--']);
    const c = check(doctor().json.checks, 'host PID namespace');
    expect(c.status, c.detail).to.equal('fail');
    expect(c.fix).to.equal('hostPID: true in the netplugin pod spec');
  });

  it('fails the plugin check, naming TMPDIR, when the plugin cannot load its binding (a noexec $TMPDIR)', async () => {
    const { doctor, np } = await netplugin('10.250.14.0/24');
    const noexec = path.join(np.dir, 'noexec-tmp');
    fs.mkdirSync(noexec);
    sh('mount', ['-t', 'tmpfs', '-o', 'noexec', 'none', noexec]);
    try {
      const r = doctor(['env', `TMPDIR=${noexec}`]);
      const c = check(r.json.checks, 'plugin binary');
      expect(c.status, c.detail).to.equal('fail');
      expect(c.detail).to.include("cannot load ffi-rs's binding");
      expect(c.fix).to.include('TMPDIR');
      // and a real ADD there answers the same error, at once
      const pod = namedNetns();
      try {
        const add = await runAdapter({ ...cniEnv('ADD', 'noexec', pod.path), TMPDIR: noexec }, np.conf);
        expect(add.json.code, add.stdout).to.equal(5);
        expect(add.json.details).to.include('noexec');
      } finally {
        pod.remove();
      }
    } finally {
      tryRun('umount', [noexec]);
    }
  });

  it("fails when another network's config sorts first, or the plugin is missing", async () => {
    const { cni, doctor } = await netplugin('10.250.11.0/24');
    fs.writeFileSync(path.join(cni.confDir, '00-other.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'bridge' }] }));
    fs.rmSync(path.join(cni.binDir, 'contivk8s'));
    const r = doctor();
    expect(r.status).to.equal(1);
    expect(check(r.json.checks, 'CNI config')).to.include({ status: 'fail' });
    expect(check(r.json.checks, 'CNI config').detail).to.match(/00-other\.conflist is first/);
    expect(check(r.json.checks, 'plugin binary').detail).to.match(/missing or not executable \(ENOENT\)/);
  });
});

describe('integration: contivctl leaks', () => {
  const np = new TestNetplugin({ subnet: '10.250.8.0/24' });
  const made: TestNetns[] = [];
  const mountFile = path.join(np.dir, 'leaked-netns');
  const orphanVeth = `ctv${uniq('', 6).slice(0, 11)}`;

  before(() => np.start());
  after(async () => {
    tryRun('umount', [mountFile]);
    tryRun('ip', ['link', 'del', orphanVeth]);
    for (const n of made) n.remove();
    await np.destroy();
  });

  it("finds a bind-mounted dead namespace holding a live pod's IP, a dead allocation and an orphan veth; --fix removes only those", async () => {
    const { pod, ip, leakedInode } = await seedLeak(np, 'live-pod', mountFile, made);

    // not ours: an `ip netns add` namespace with no process and no address of our subnet
    const decoy = namedNetns();
    made.push(decoy);
    // a dead allocation: the pod's namespace died without a DEL, taking its veth with it
    const gone = await processNetns();
    const added = await runAdapter(cniEnv('ADD', 'gone-pod', gone.path), np.conf);
    expect(added.status).to.equal(0);
    const goneVeth = added.json.interfaces[0].name;
    gone.remove();
    await waitFor("the dead pod's veth to go", () => !hostLinkNames().includes(goneVeth));
    // an orphan veth of ours on the bridge, with no allocation
    sh('ip', ['link', 'add', orphanVeth, 'type', 'veth', 'peer', 'name', uniq('ctvp', 4)]);
    sh('ip', ['link', 'set', orphanVeth, 'master', np.bridge]);

    const dry = contivctl(['leaks', '--socket', np.socket]);
    expect(dry.status).to.equal(1);
    const found: Leak[] = dry.json.found;
    const dup = found.find((l) => l.kind === 'duplicate-ip' && l.ip === ip);
    expect(dup, JSON.stringify(found)).to.not.equal(undefined);
    expect((dup as Extract<Leak, { kind: 'duplicate-ip' }>).namespaces.map((n) => n.inode)).to.have.members([inodeOf(pod.path), leakedInode]);
    expect(found.find((l) => l.kind === 'orphan-netns' && l.inode === leakedInode)).to.include({ fixable: true });
    expect(found.find((l) => l.kind === 'orphan-netns' && l.inode === inodeOf(decoy.path))).to.include({ fixable: false });
    expect(found.find((l) => l.kind === 'stale-allocation' && l.containerId === 'gone-pod')).to.include({ fixable: true });
    expect(found.find((l) => l.kind === 'orphan-veth' && l.hostVeth === orphanVeth)).to.include({ fixable: true });
    expect(inodeOf(mountFile)).to.equal(leakedInode); // the dry run changed nothing

    const fixed = contivctl(['leaks', '--socket', np.socket, '--fix']);
    const remaining: Leak[] = fixed.json.remaining;
    expect(remaining.some((l) => l.kind === 'duplicate-ip' && l.ip === ip)).to.equal(false);
    expect(remaining.some((l) => 'inode' in l && l.inode === leakedInode)).to.equal(false);
    expect(remaining.some((l) => l.kind === 'orphan-netns' && l.inode === inodeOf(decoy.path))).to.equal(true);
    expect(fixed.status).to.equal(1); // the decoy is reported, never removed

    expect(inodeOf(mountFile)).to.not.equal(leakedInode);
    expect(hostLinkNames()).to.not.include(orphanVeth);
    const endpoints = await np.endpoints();
    expect(endpoints.map((e) => e.containerId)).to.deep.equal(['live-pod']);
    expect(ping(pod.path, '10.250.8.1')).to.equal(true);
    expect(fs.existsSync(decoy.path)).to.equal(true);
  });
});

describe('integration: contivctl leaks with the netplugin down', () => {
  const np = new TestNetplugin({ subnet: '10.250.13.0/24' });
  const made: TestNetns[] = [];
  const mountFile = path.join(np.dir, 'leaked-netns');

  before(() => np.start());
  after(async () => {
    tryRun('umount', [mountFile]);
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('still reports the bind-mounted dead namespace, the duplicate IP and our veths, says allocations were not checked, and --fix refuses', async () => {
    const { ip, veth, leakedInode } = await seedLeak(np, 'while-down', mountFile, made);
    await np.stop('SIGKILL');

    const r = contivctl(['leaks', '--socket', np.socket, '--bridge', np.bridge]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.json.allocationsChecked).to.equal(false);
    expect(r.json.netplugin).to.include(np.socket);
    const found: Leak[] = r.json.found;
    expect(found.find((l) => l.kind === 'duplicate-ip' && l.ip === ip)).to.not.equal(undefined);
    expect(found.find((l) => l.kind === 'orphan-netns' && l.inode === leakedInode)).to.include({ fixable: false });
    expect(found.find((l) => l.kind === 'unchecked-veth' && l.hostVeth === veth)).to.include({ fixable: false });
    expect(found.every((l) => !l.fixable)).to.equal(true);

    const text = spawnSync(path.join(BIN, 'contivctl'), ['leaks', '--socket', np.socket, '--bridge', np.bridge], { encoding: 'utf8' });
    expect(text.stdout).to.match(/^netplugin unreachable \(netplugin is not listening on .*\): allocations could not be checked/);

    const fixed = contivctl(['leaks', '--socket', np.socket, '--bridge', np.bridge, '--fix']);
    expect(fixed.status).to.equal(1);
    expect(fixed.json.refused).to.match(/^--fix refused: .* none of the findings is provably dead/);
    expect(fixed.json.fixed).to.deep.equal([]);
    expect(inodeOf(mountFile)).to.equal(leakedInode);
    expect(hostLinkNames()).to.include(veth);

    // with the netplugin back, the same node is judged with its allocations again
    await np.start();
    const back = contivctl(['leaks', '--socket', np.socket]);
    expect(back.json.allocationsChecked).to.equal(true);
    expect(back.json.found.find((l: Leak) => l.kind === 'orphan-netns' && l.inode === leakedInode)).to.include({ fixable: true });
  });
});
