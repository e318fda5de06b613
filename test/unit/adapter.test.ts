// The adapter's commands in-process, as the reference plugins' skel allows: decoded env and config in, fakes
// for the namespace, the netplugin (a NetpluginClient over a scripted transport, so answers are checked as on
// the wire) and the DEL queue; what each command sends, answers and refuses.
import { expect } from 'chai';
import { type Deps, dispatch, type EnteredNetns } from '../../src/adapter/commands';
import { type Answer, type Exchange, NetpluginClient, NetpluginUnreachable, type Transport } from '../../src/api/client';
import type { PodAttr, QueuedDel } from '../../src/api/wire';
import { parseNetConf } from '../../src/cni/config';
import { parseEnv } from '../../src/cni/env';
import { CniError, ErrorCode, PluginErrorCode } from '../../src/errors';

const SOCKET = '/run/contiv/test.sock';
const ADD_ANSWER = {
  result: 0,
  ipaddress: '10.1.0.5/24',
  gateway: '10.1.0.1',
  mac: '0a:58:0a:01:00:05',
  hostveth: 'ctv0123456789a',
  defaultroute: true,
};

/** A netplugin that answers each route from a script and records what it was sent. */
class ScriptedTransport implements Transport {
  readonly socket = SOCKET;
  readonly timeoutMs = 1000;
  readonly sent: { path: string; body?: PodAttr }[] = [];
  constructor(private readonly answer: (path: string, body?: PodAttr) => Answer | Error) {}

  async exchange(e: Exchange): Promise<Answer> {
    const body = e.body ? (JSON.parse(e.body) as PodAttr) : undefined;
    this.sent.push({ path: e.path, body });
    const a = this.answer(e.path, body);
    if (a instanceof Error) throw a;
    return a;
  }
}

const ok = (body: object): Answer => ({ status: 200, body: JSON.stringify(body) });

function harness(answer: (path: string, body?: PodAttr) => Answer | Error, opts: { enterFails?: CniError } = {}) {
  const transport = new ScriptedTransport(answer);
  const entered: string[] = [];
  const closed: string[] = [];
  const logs: { level: string; message: string; meta: Record<string, unknown> }[] = [];
  const queued: QueuedDel[] = [];
  const waits: { what: string; code: number }[] = [];
  const deps: Deps = {
    pid: 4242,
    enterNetns(path): EnteredNetns {
      if (opts.enterFails) throw opts.enterFails;
      entered.push(path);
      return { dev: 4, ino: 4026532000, close: () => closed.push(path) };
    },
    netplugin: () => new NetpluginClient(transport),
    enqueueDel: (_socket, entry) => {
      queued.push(entry);
      return `/run/contiv/del-queue/${entry.queuedAt}.json`;
    },
    log: (level, message, meta) => logs.push({ level, message, meta }),
    waiting: (what, code) => waits.push({ what, code }),
    now: () => 1_700_000_000_000,
  };
  return { deps, transport, entered, closed, logs, queued, waits };
}

const env = (command: string, extra: Record<string, string> = {}) =>
  parseEnv({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c0ffee',
    CNI_NETNS: '/var/run/netns/cni-1234',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0',
    ...extra,
  });
const conf = (extra: object = {}) => parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'contiv', type: 'contivk8s', socket: SOCKET, ...extra }));

async function failure(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (err) {
    return err as CniError;
  }
  throw new Error('expected a failure');
}

describe('unit: the adapter commands (in-process, with fakes)', () => {
  it('ADD asks the netplugin to wire /proc/<pid>/ns/net, naming the verified namespace, and answers the CNI result', async () => {
    const h = harness(() => ok(ADD_ANSWER));
    const out = await dispatch(env('ADD'), conf(), h.deps);
    expect(h.entered).to.deep.equal(['/var/run/netns/cni-1234']);
    expect(h.transport.sent).to.have.length(1);
    expect(h.transport.sent[0].path).to.equal('/ContivCNI.AddPod');
    expect(h.transport.sent[0].body).to.include({
      CNI_NETNS: '/proc/4242/ns/net',
      CONTIV_NETNS_DEV: 4,
      CONTIV_NETNS_INODE: 4026532000,
      CONTIV_ORIG_NETNS: '/var/run/netns/cni-1234',
      CNI_CONTAINERID: 'c0ffee',
      K8S_POD_NAME: 'web-0',
      CONTIV_DEFAULT_ROUTE: true,
      CONTIV_HAIRPIN: true,
    });
    expect(out.rewrittenNetns).to.equal('/proc/4242/ns/net');
    expect(out.stdout).to.deep.include({ cniVersion: '1.0.0' });
    const result = out.stdout as { interfaces: { name: string; sandbox?: string }[]; ips: { address: string }[] };
    expect(result.interfaces.map((i) => i.name)).to.deep.equal(['ctv0123456789a', 'eth0']);
    expect(result.interfaces[1].sandbox).to.equal('/var/run/netns/cni-1234');
    expect(result.ips[0].address).to.equal('10.1.0.5/24');
    // while it asked, the deadline would have named the netplugin and code 11
    expect(h.waits.at(-1)).to.deep.equal({ what: `the netplugin on ${SOCKET}`, code: ErrorCode.TryAgainLater });
  });

  it('ADD on a second interface asks for no default route unless isDefaultGateway says so', async () => {
    for (const [extra, expected] of [
      [{}, false],
      [{ isDefaultGateway: true }, true],
    ] as const) {
      const h = harness(() => ok(ADD_ANSWER));
      await dispatch(env('ADD', { CNI_IFNAME: 'net1' }), conf(extra), h.deps);
      expect(h.transport.sent[0].body?.CONTIV_DEFAULT_ROUTE).to.equal(expected);
    }
  });

  it('ADD sends a static IP and MAC asked for in runtimeConfig, and refuses an answer without them', async () => {
    const asked = conf({ capabilities: { ips: true, mac: true }, runtimeConfig: { ips: ['10.1.0.9/24'], mac: '0a:58:0a:01:00:09' } });
    const h = harness(() => ok(ADD_ANSWER));
    const err = await failure(dispatch(env('ADD'), asked, h.deps));
    expect(h.transport.sent[0].body).to.include({ CONTIV_MAC: '0a:58:0a:01:00:09' });
    expect(h.transport.sent[0].body?.CONTIV_IPS).to.deep.equal(['10.1.0.9/24']);
    expect(err.code).to.equal(ErrorCode.Io);
    expect(err.message).to.equal('netplugin answered AddPod without the requested IP 10.1.0.9');
  });

  it('ADD whose namespace cannot be entered asks nothing of the netplugin', async () => {
    const refused = new CniError(ErrorCode.InvalidEnv, "CNI_NETNS /proc/1/ns/net is the plugin's own network namespace");
    const h = harness(() => ok(ADD_ANSWER), { enterFails: refused });
    expect(await failure(dispatch(env('ADD'), conf(), h.deps))).to.equal(refused);
    expect(h.transport.sent).to.deep.equal([]);
  });

  it('DEL whose namespace is gone still frees the attachment: sent without a namespace, and logged', async () => {
    const gone = new CniError(ErrorCode.ContainerUnknown, 'network namespace /var/run/netns/cni-1234 does not exist');
    const h = harness(() => ok({ result: 0 }), { enterFails: gone });
    const out = await dispatch(env('DEL'), conf(), h.deps);
    expect(h.transport.sent[0].path).to.equal('/ContivCNI.DelPod');
    expect(h.transport.sent[0].body).to.not.have.property('CNI_NETNS');
    expect(h.transport.sent[0].body).to.include({ CNI_CONTAINERID: 'c0ffee', CNI_IFNAME: 'eth0' });
    expect(out.rewrittenNetns).to.equal('');
    expect(h.logs).to.deep.equal([{ level: 'warn', message: 'DEL without namespace', meta: { netns: '/var/run/netns/cni-1234', reason: gone.message } }]);
  });

  it('DEL the netplugin cannot take is queued with what the netplugin needs, and answered as done', async () => {
    const h = harness(() => new NetpluginUnreachable(ErrorCode.TryAgainLater, `netplugin is not listening on ${SOCKET}`));
    const out = await dispatch(env('DEL'), conf(), h.deps);
    expect(out.stdout).to.equal(undefined);
    expect(h.queued).to.deep.equal([
      {
        containerId: 'c0ffee',
        ifname: 'eth0',
        netns: '/var/run/netns/cni-1234',
        podName: 'web-0',
        podNamespace: 'default',
        queuedAt: 1_700_000_000_000,
        reason: `netplugin is not listening on ${SOCKET}`,
      },
    ]);
    expect(h.logs.map((l) => l.message)).to.deep.equal(['DEL queued: the netplugin could not be asked']);
  });

  it('DEL the netplugin refuses (it answered) is an error, not queued', async () => {
    const h = harness(() => ok({ result: ErrorCode.Io, errmsg: 'delete ctv0123456789a: EBUSY' }));
    const err = await failure(dispatch(env('DEL'), conf(), h.deps));
    expect([err.code, err.message]).to.deep.equal([ErrorCode.Io, 'delete ctv0123456789a: EBUSY']);
    expect(h.queued).to.deep.equal([]);
  });

  it('CHECK compares prevResult with what the netplugin observes in the namespace', async () => {
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: '10.1.0.5/24', interface: 0 }] };
    const fine = harness(() => ok({ result: 0, ipaddress: '10.1.0.5/24', observed: ['10.1.0.5/24'] }));
    expect(await dispatch(env('CHECK'), conf({ prevResult }), fine.deps)).to.deep.equal({ rewrittenNetns: '/proc/4242/ns/net' });
    const lacking = harness(() => ok({ result: 0, ipaddress: '10.1.0.5/24', observed: [] }));
    const err = await failure(dispatch(env('CHECK'), conf({ prevResult }), lacking.deps));
    expect([err.code, err.message, err.details]).to.deep.equal([
      PluginErrorCode.CheckFailed,
      'eth0 in /var/run/netns/cni-1234 lacks 10.1.0.5/24',
      'found: none',
    ]);
    expect((await failure(dispatch(env('CHECK'), conf(), fine.deps))).code).to.equal(ErrorCode.InvalidConfig);
  });

  it('GC without cni.dev/valid-attachments refuses (it would free everything); STATUS of an unhealthy netplugin is code 50', async () => {
    const h = harness(() => ({ status: 503, body: '' }));
    const gc = await failure(dispatch(env('GC'), conf(), h.deps));
    expect([gc.code, gc.details]).to.deep.equal([ErrorCode.InvalidConfig, 'without it every attachment would be freed']);
    expect(h.transport.sent).to.deep.equal([]);
    const status = await failure(dispatch(env('STATUS'), conf(), h.deps));
    expect([status.code, status.message]).to.deep.equal([ErrorCode.PluginNotAvailable, `netplugin is not available on ${SOCKET}`]);
  });
});
