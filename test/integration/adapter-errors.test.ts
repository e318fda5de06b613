// Bad input to the real adapter against a real netplugin: each gets its documented CNI code on stdout,
// a non-zero exit, and leaves the node exactly as it was.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { BIN, hostLinkNames, links, namedNetns, type TestNetns, uniq } from '../../testbed/sys';

describe('integration: the adapter refuses bad input and changes nothing', () => {
  const np = new TestNetplugin({ subnet: '10.251.0.0/24' });
  let pod: TestNetns;

  before(async () => {
    await np.start();
    pod = namedNetns();
  });
  after(async () => {
    pod?.remove();
    await np.destroy();
  });

  async function snapshot() {
    return {
      hostLinks: hostLinkNames().sort(),
      podLinks: links(pod.path)
        .map((l) => l.ifname)
        .sort(),
      endpoints: await np.endpoints(),
      netns: fs.readdirSync('/var/run/netns').sort(),
    };
  }

  const without = (env: Record<string, string>, key: string) => Object.fromEntries(Object.entries(env).filter(([k]) => k !== key));
  const cases: { name: string; code: number; env?: (id: string) => Record<string, string>; stdin?: string | object }[] = [
    { name: 'malformed JSON', code: ErrorCode.Decode, stdin: '{"cniVersion": "1.0.0", "name": ' },
    { name: 'missing CNI_CONTAINERID', code: ErrorCode.InvalidEnv, env: (id) => without(cniEnv('ADD', id, pod.path), 'CNI_CONTAINERID') },
    { name: 'missing CNI_COMMAND', code: ErrorCode.InvalidEnv, env: (id) => without(cniEnv('ADD', id, pod.path), 'CNI_COMMAND') },
    { name: 'unknown command', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('FROB', id, pod.path) },
    { name: 'cniVersion 9.9.9', code: ErrorCode.IncompatibleVersion, stdin: { cniVersion: '9.9.9', name: 'x', type: 'contivk8s' } },
    { name: 'CNI_NETNS=/etc/passwd', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, '/etc/passwd') },
    { name: 'CNI_NETNS=/proc/self/ns/mnt', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, '/proc/self/ns/mnt') },
    { name: 'a relative CNI_NETNS', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, 'var/run/netns/x') },
    { name: 'a missing path on ADD', code: ErrorCode.ContainerUnknown, env: (id) => cniEnv('ADD', id, '/var/run/netns/does-not-exist-ctv') },
    {
      name: "the host's own namespace (the daemon's /proc/<pid>/ns/net)",
      code: ErrorCode.InvalidEnv,
      env: (id) => cniEnv('ADD', id, `/proc/${np.pid}/ns/net`),
    },
    { name: 'CNI_IFNAME too long', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, pod.path, { CNI_IFNAME: 'eth0123456789abc' }) },
    { name: 'CNI_IFNAME with "/"', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, pod.path, { CNI_IFNAME: 'et/h0' }) },
    { name: 'CNI_IFNAME with a space', code: ErrorCode.InvalidEnv, env: (id) => cniEnv('ADD', id, pod.path, { CNI_IFNAME: 'eth 0' }) },
    { name: 'an abstract socket in the config', code: ErrorCode.InvalidConfig, stdin: { cniVersion: '1.0.0', name: 'x', socket: '@contiv' } },
    {
      name: 'CHECK under cniVersion 0.3.1',
      code: ErrorCode.IncompatibleVersion,
      env: (id) => cniEnv('CHECK', id, pod.path),
      stdin: { cniVersion: '0.3.1', name: 'x', prevResult: {} },
    },
  ];

  for (const c of cases) {
    it(`${c.name} -> code ${c.code}`, async () => {
      const before = await snapshot();
      const id = uniq('bad');
      const stdin = c.stdin === undefined ? np.conf : typeof c.stdin === 'string' ? c.stdin : { ...np.conf, ...c.stdin };
      const r = await runAdapter(c.env ? c.env(id) : cniEnv('ADD', id, pod.path), stdin);
      expect(r.status, r.stdout + r.stderr).to.not.equal(0);
      expect(r.json.code, r.stdout).to.equal(c.code);
      expect(r.json.msg).to.be.a('string').and.not.empty;
      expect(r.json.cniVersion).to.be.a('string');
      expect(r.stderr).to.equal('');
      expect(await snapshot()).to.deep.equal(before);
    });
  }

  it('netplugin not listening -> code 11 naming the socket, nothing changed', async () => {
    const before = await snapshot();
    const socket = `/tmp/${uniq('ctv-absent-')}.sock`;
    const r = await runAdapter(cniEnv('ADD', uniq('c'), pod.path), { ...np.conf, socket });
    expect(r.status).to.not.equal(0);
    expect(r.json.code).to.equal(ErrorCode.TryAgainLater);
    expect(r.json.msg).to.include(socket);
    expect(await snapshot()).to.deep.equal(before);
  });

  it("VERSION with libcni's dummy values answers without touching a namespace", async () => {
    const r = await runAdapter({ CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' }, { cniVersion: '1.1.0' });
    expect(r.status).to.equal(0);
    expect(r.json).to.deep.equal({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it("works exec'd through a symlink from another directory (as /opt/cni/bin/contivk8s -> repo)", async () => {
    const linkDir = fs.mkdtempSync('/tmp/ctv-cnibin-');
    try {
      fs.symlinkSync(path.join(BIN, 'contivk8s'), path.join(linkDir, 'contivk8s'));
      // /etc/passwd makes the plugin load ffi-rs (NS_GET_NSTYPE), so module resolution is exercised too
      const r = await runAdapter(cniEnv('ADD', uniq('sym'), '/etc/passwd'), np.conf, path.join(linkDir, 'contivk8s'));
      expect(r.json.code, r.stdout + r.stderr).to.equal(ErrorCode.InvalidEnv);
      const ok = await runAdapter({ CNI_COMMAND: 'STATUS', CNI_PATH: linkDir }, { ...np.conf, cniVersion: '1.1.0' }, path.join(linkDir, 'contivk8s'));
      expect(ok.status).to.equal(0);
    } finally {
      fs.rmSync(linkDir, { recursive: true, force: true });
    }
  });

  it('STATUS is 0 with a healthy netplugin and 50 without one', async () => {
    const env = { CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' };
    expect((await runAdapter(env, { ...np.conf, cniVersion: '1.1.0' })).status).to.equal(0);
    const down = await runAdapter(env, { ...np.conf, cniVersion: '1.1.0', socket: '/tmp/ctv-nothing-here.sock' });
    expect(down.status).to.not.equal(0);
    expect(down.json.code).to.equal(ErrorCode.PluginNotAvailable);
  });
});
