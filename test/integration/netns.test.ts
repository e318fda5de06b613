import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors';
import { namedNetns, processNetns, sh, type TestNetns, uniq } from '../../testbed/sys';

const HELPER = path.join(__dirname, '../support/enter-netns.js');

function enter(nsPath: string, wrap: string[] = []): any {
  const args = [...wrap, process.execPath, HELPER, nsPath];
  return JSON.parse(execFileSync(args[0], args.slice(1), { encoding: 'utf8' }));
}

describe('integration: entering namespaces (real kernel)', () => {
  const made: TestNetns[] = [];
  after(() => {
    for (const n of made) n.remove();
  });

  it('enters an `ip netns add` namespace; /proc/<pid>/ns/net then has its inode', () => {
    const ns = namedNetns();
    made.push(ns);
    const r = enter(ns.path);
    expect(r.ok, r.msg).to.equal(true);
    expect(r.after).to.deep.equal(r.target);
    expect(r.before).to.not.equal(r.target.ino);
    expect(r.target.ino).to.equal(fs.statSync(ns.path).ino);
  });

  it('enters the namespace of an `unshare --net` process by /proc/<pid>/ns/net', async () => {
    const ns = await processNetns();
    made.push(ns);
    const r = enter(ns.path);
    expect(r.ok, r.msg).to.equal(true);
    expect(r.after.ino).to.equal(fs.statSync(ns.path).ino);
  });

  it('enters a namespace named like CRI-O (/var/run/netns/<uuid>) and like podman (/run/netns/netns-<uuid>)', () => {
    const crio = namedNetns(`${uniq('ctvtest-', 8)}-4a59-4e8d-b7c6-5a4f3e2d1c0b`);
    made.push(crio);
    expect(enter(crio.path).ok).to.equal(true);
    const podman = namedNetns(uniq('netns-ctvtest-', 8));
    made.push(podman);
    const viaRun = podman.path.replace('/var/run/', '/run/');
    expect(enter(viaRun).after.ino).to.equal(fs.statSync(podman.path).ino);
  });

  it('refuses /etc/passwd (not nsfs) with code 4', () => {
    expect(enter('/etc/passwd')).to.include({ ok: false, code: ErrorCode.InvalidEnv });
  });

  it('refuses /proc/self/ns/mnt (a namespace, but not a network one) with code 4', () => {
    const r = enter('/proc/self/ns/mnt');
    expect(r).to.include({ ok: false, code: ErrorCode.InvalidEnv });
    expect(r.msg).to.match(/not a network namespace/);
  });

  it('a vanished PID says the process is gone or hostPID is missing (code 3)', () => {
    const r = enter('/proc/999999999/ns/net');
    expect(r).to.include({ ok: false, code: ErrorCode.ContainerUnknown });
    expect(r.details).to.match(/hostPID: true/);
  });

  it('without CAP_SYS_PTRACE, another process namespace is refused naming SYS_PTRACE', async () => {
    const ns = await processNetns();
    made.push(ns);
    // an unprivileged uid with no capabilities: /proc/<pid>/ns of root's process needs ptrace access
    const r = enter(ns.path, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--']);
    expect(r).to.include({ ok: false });
    expect(r.details).to.match(/SYS_PTRACE/);
  });

  it('without CAP_SYS_ADMIN, setns is refused naming SYS_ADMIN', () => {
    const ns = namedNetns();
    made.push(ns);
    // root keeps file access (DAC) but loses CAP_SYS_ADMIN from every set
    const r = enter(ns.path, ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin', '--']);
    expect(r).to.include({ ok: false, code: ErrorCode.Io });
    expect(r.details).to.match(/SYS_ADMIN/);
    expect(sh('ip', ['netns', 'list'])).to.include(path.basename(ns.path));
  });
});
