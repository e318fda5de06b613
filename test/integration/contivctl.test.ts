// contivctl doctor and leaks on the real node: real daemons with real capability sets and mount
// namespaces, and a real seeded leak (a bind-mounted namespace with no process holding a duplicate IP).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Check } from '../../src/contivctl/doctor';
import type { Leak } from '../../src/contivctl/leaks';
import { hostVethName } from '../../src/linux/ifname';
import { formatMark } from '../../src/linux/mark';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { type CniDirs, makeCniDirs } from '../../testbed/kubelet/cni-dirs';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, finished, hostLinkNames, namedNetns, ping, processNetns, sh, type TestNetns, tryRun, uniq, waitFor } from '../../testbed/sys';

type ContivctlRun = { status: number; json: any; stdout: string; stderr: string };

/** What a contivctl run printed, its --json output parsed (undefined when it printed none). */
function parsed(r: { status: number | null; stdout: string; stderr: string }): ContivctlRun {
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}

/** contivctl with --json, as a child that does not hold the test's event loop. */
function contivctlAsync(args: string[]): Promise<ContivctlRun> {
  const child = spawn(path.join(BIN, 'contivctl'), [...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return finished(child).then(parsed);
}

function contivctl(args: string[], wrap: string[] = []): ContivctlRun {
  const [cmd, ...rest] = [...wrap, path.join(BIN, 'contivctl'), ...args, '--json'];
  return parsed(spawnSync(cmd, rest, { encoding: 'utf8' }));
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
  const np = new TestNetplugin({ subnet: '10.250.8.0/24', subnet6: 'fd00:250:8::/64' });
  const made: TestNetns[] = [];
  const mountFile = path.join(np.dir, 'leaked-netns');
  const lookalike = 'ctv0123456789a';
  const forged = hostVethName('forged', 'eth0');

  before(() => np.start());
  after(async () => {
    tryRun('umount', [mountFile]);
    for (const v of [lookalike, forged]) tryRun('ip', ['link', 'del', v]);
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('on a healthy node with IPv6 link-local addresses: no finding, exit 0', async () => {
    const pods = [namedNetns(), namedNetns()];
    made.push(...pods);
    for (const [i, p] of pods.entries()) expect((await runAdapter(cniEnv('ADD', `healthy-${i}`, p.path), np.conf)).status).to.equal(0);
    await waitFor('link-local addresses on the pods', () =>
      pods.every((p) => sh('nsenter', [`--net=${p.path}`, 'ip', '-6', 'addr', 'show', 'scope', 'link']).includes('fe80')),
    );
    const r = contivctl(['leaks', '--socket', np.socket]);
    expect(r.json.found, r.stdout).to.deep.equal([]);
    expect(r.status).to.equal(0);
    for (const [i, p] of pods.entries()) expect((await runAdapter(cniEnv('DEL', `healthy-${i}`, p.path), np.conf)).status).to.equal(0);
  });

  it('tells what is dead, what is live, and what is not ours; --fix frees the dead, adopts the live, and leaves the rest', async () => {
    const { pod, ip, leakedInode } = await seedLeak(np, 'live-pod', mountFile, made);
    // not ours: an `ip netns add` namespace with no process holding an address of our subnet, and a veth named like ours
    const decoy = namedNetns();
    made.push(decoy);
    sh('nsenter', [`--net=${decoy.path}`, 'ip', 'link', 'add', 'dummyish', 'type', 'veth', 'peer', 'name', 'dummyish1']);
    sh('nsenter', [`--net=${decoy.path}`, 'ip', 'addr', 'add', '10.250.8.200/24', 'dev', 'dummyish']);
    sh('ip', ['link', 'add', lookalike, 'type', 'veth', 'peer', 'name', uniq('ctvp', 4)]);
    sh('ip', ['link', 'set', lookalike, 'master', np.bridge]);
    // dead: the pod's namespace died without a DEL, taking its veth with it
    const gone = await processNetns();
    const added = await runAdapter(cniEnv('ADD', 'gone-pod', gone.path), np.conf);
    expect(added.status).to.equal(0);
    gone.remove();
    await waitFor("the dead pod's veth to go", () => !hostLinkNames().includes(added.json.interfaces[0].name));
    // live but unrecorded: a veth on our bridge carrying our mark (as a store that lost a record leaves it)
    const mark = formatMark({ containerId: 'forged', ifname: 'eth0', ipv4: '10.250.8.201', mac: '0a:58:0a:fa:08:c9', createdAtMs: Date.now() - 60_000 });
    sh('ip', ['link', 'add', forged, 'type', 'veth', 'peer', 'name', uniq('ctvp', 4)]);
    sh('ip', ['link', 'set', forged, 'master', np.bridge, 'alias', mark]);

    const dry = contivctl(['leaks', '--socket', np.socket]);
    expect(dry.status).to.equal(1);
    const found: Leak[] = dry.json.found;
    const kinds = (kind: Leak['kind']) => found.filter((l) => l.kind === kind);
    const dup = kinds('duplicate-ip').find((l) => 'ip' in l && l.ip === ip) as Extract<Leak, { kind: 'duplicate-ip' }>;
    expect(dup.namespaces.map((n) => n.inode)).to.have.members([inodeOf(pod.path), leakedInode]);
    expect(kinds('dead-netns').map((l) => [(l as Extract<Leak, { kind: 'dead-netns' }>).inode, l.fixable])).to.deep.include.members([
      [leakedInode, false],
      [inodeOf(decoy.path), false],
    ]);
    expect(kinds('stale-allocation').map((l) => ('containerId' in l ? l.containerId : ''))).to.deep.equal(['gone-pod']);
    expect(kinds('unrecorded-veth').map((l) => ('hostVeth' in l ? l.hostVeth : ''))).to.deep.equal([forged]);
    expect(kinds('foreign-veth').map((l) => ('hostVeth' in l ? l.hostVeth : ''))).to.deep.equal([lookalike]);

    const fixed = contivctl(['leaks', '--socket', np.socket, '--fix']);
    expect(fixed.json.fixed.map((f: { action: string; finding: { kind: string } }) => [f.finding.kind, f.action])).to.have.deep.members([
      ['stale-allocation', 'freed'],
      ['unrecorded-veth', 'adopted'],
    ]);
    const remaining: Leak[] = fixed.json.remaining;
    expect(remaining.map((l) => l.kind).sort()).to.deep.equal(['dead-netns', 'dead-netns', 'duplicate-ip', 'foreign-veth']);
    expect(fixed.status).to.equal(1);
    // nothing that is not ours was touched
    expect(inodeOf(mountFile)).to.equal(leakedInode);
    expect(fs.existsSync(decoy.path)).to.equal(true);
    expect(hostLinkNames()).to.include.members([lookalike, forged]);
    const endpoints = await np.endpoints();
    expect(endpoints.map((e) => [e.containerId, e.origin]).sort()).to.deep.equal([
      ['forged', 'adopted'],
      ['live-pod', 'add'],
    ]);
    expect(ping(pod.path, '10.250.8.1')).to.equal(true);
  });

  it('--fix racing 40 ADDs: every pod that got an answer keeps its namespace, eth0, address, veth and record', async function () {
    this.timeout(180_000);
    // ADDs into mount-only namespaces, as containerd's CRI makes them before its pause process starts
    const pods = Array.from({ length: 40 }, () => namedNetns());
    made.push(...pods);
    let adding = true;
    // one --fix after another for as long as the ADDs come, so that ADDs land inside every phase of a scan
    const fixer = (async () => {
      const runs: ReturnType<typeof contivctl>[] = [];
      while (adding) runs.push(await contivctlAsync(['leaks', '--socket', np.socket, '--fix']));
      return runs;
    })();
    const adds = await Promise.all(
      pods.map(async (p, i) => {
        await new Promise((r) => setTimeout(r, 300 + i * 40));
        return runAdapter(cniEnv('ADD', `racer-${i}`, p.path), np.conf);
      }),
    );
    adding = false;
    const runs = await fixer;
    for (const f of runs) expect(f.status, f.stderr).to.be.oneOf([0, 1]);
    expect(
      runs.every((f) => f.json),
      'every --fix answered',
    ).to.equal(true);
    const endpoints = await np.endpoints();
    for (const [i, r] of adds.entries()) {
      if (r.status !== 0) continue;
      const e = endpoints.find((x) => x.containerId === `racer-${i}`);
      expect(e, `racer-${i}'s record`).to.not.equal(undefined);
      expect(fs.existsSync(pods[i].path), `racer-${i}'s namespace`).to.equal(true);
      expect(hostLinkNames(), `racer-${i}'s veth`).to.include(e!.hostVeth);
      expect(sh('nsenter', [`--net=${pods[i].path}`, 'ip', '-o', '-4', 'addr', 'show', 'eth0']), `racer-${i}'s eth0`).to.include(e!.ipaddress);
    }
    expect(adds.filter((r) => r.status === 0).length).to.equal(40);
    for (const [i, p] of pods.entries()) await runAdapter(cniEnv('DEL', `racer-${i}`, p.path), np.conf);
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
    expect(found.find((l) => l.kind === 'dead-netns' && l.inode === leakedInode)).to.include({ fixable: false });
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
    // its address is a live pod's: a duplicate, and a dead namespace that is not ours to unmount
    expect(back.json.found.find((l: Leak) => l.kind === 'dead-netns' && l.inode === leakedInode)).to.include({ fixable: false });
    expect(back.json.found.find((l: Leak) => l.kind === 'duplicate-ip' && l.ip === ip)).to.not.equal(undefined);
  });
});
