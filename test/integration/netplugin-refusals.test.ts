// The netplugin is the privileged party: whatever a client asks, it never wires its own (the host's) network
// namespace as a pod. It runs here inside a throwaway namespace that stands in for the host, so that a bug
// would show as an eth0 and a replaced default route there, never on this machine.
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { namedNetns, sh, type TestNetns, tryRun, uniq, waitFor } from '../../testbed/sys';

describe('integration: the netplugin refuses to wire its own namespace', () => {
  const host = uniq('ctvfakehost-', 4);
  let np: TestNetplugin;
  const inHost = (args: string[]) => sh('ip', ['-n', host, ...args]);
  let baseline: { links: string; routes: string };

  before(async () => {
    sh('ip', ['netns', 'add', host]);
    inHost(['link', 'set', 'lo', 'up']);
    np = new TestNetplugin({ subnet: '10.249.5.0/24', netns: host });
    await np.start();
    inHost(['route', 'add', 'default', 'dev', np.bridge]);
    baseline = { links: inHost(['-o', 'link', 'show']).replace(/\d+: /g, ''), routes: inHost(['route', 'show']) };
  });
  after(async () => {
    await np.destroy();
    tryRun('ip', ['netns', 'del', host]);
  });

  const unchanged = () => {
    expect(inHost(['-o', 'link', 'show']).replace(/\d+: /g, '')).to.equal(baseline.links);
    expect(inHost(['route', 'show'])).to.equal(baseline.routes);
  };

  it("an AddPod naming /proc/<netplugin-pid>/ns/net (contiv's own client's request) is refused, nothing changed", async () => {
    const attr = {
      K8S_POD_NAME: 'evil',
      K8S_POD_NAMESPACE: 'default',
      K8S_POD_INFRA_CONTAINER_ID: 'evil',
      CNI_NETNS: `/proc/${np.pid}/ns/net`,
      CNI_IFNAME: 'eth0',
    };
    const err = await np.client.addPod(attr).then(
      () => undefined,
      (e: { code: number; message: string }) => e,
    );
    expect(err?.code).to.equal(ErrorCode.InvalidEnv);
    expect(err?.message).to.include("the netplugin's own network namespace");
    unchanged();
    expect(await np.endpoints()).to.deep.equal([]);
  });

  it('so is any other process in its namespace, and the adapter sent at it (from outside) gets the refusal', async () => {
    const other = spawn('ip', ['netns', 'exec', host, 'sleep', '60'], { stdio: 'ignore' });
    try {
      await waitFor('the process in the fake host namespace', () => tryRun('readlink', [`/proc/${other.pid}/exe`])?.includes('sleep'));
      const r = await runAdapter(cniEnv('ADD', 'aimed-at-host', `/proc/${other.pid}/ns/net`), np.conf);
      expect(r.status).to.equal(1);
      expect(r.json.code, r.stdout).to.equal(ErrorCode.InvalidEnv);
      unchanged();
      expect(await np.endpoints()).to.deep.equal([]);
    } finally {
      other.kill('SIGKILL');
    }
  });
});

describe('integration: GC as libcni sends it when no pod on the node is valid', () => {
  const np = new TestNetplugin({ subnet: '10.249.6.0/24' });
  const made: TestNetns[] = [];
  before(() => np.start());
  after(async () => {
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('"cni.dev/valid-attachments": null frees every attachment (and the key absent is still refused)', async () => {
    for (const id of ['gc-null-a', 'gc-null-b']) {
      const ns = namedNetns();
      made.push(ns);
      expect((await runAdapter(cniEnv('ADD', id, ns.path), np.conf)).status).to.equal(0);
    }
    const gc = (extra: object) => runAdapter({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, { ...np.conf, cniVersion: '1.1.0', ...extra });
    expect((await gc({})).json.code).to.equal(ErrorCode.InvalidConfig);
    expect(await np.endpoints()).to.have.length(2);
    const r = await gc({ 'cni.dev/valid-attachments': null, 'cni.dev/attachments': null });
    expect(r.status, r.stdout).to.equal(0);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(np.bridgePorts()).to.deep.equal([]);
  });
});
