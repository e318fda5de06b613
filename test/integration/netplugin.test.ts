// The real adapter against the real netplugin on the real kernel: namespaces, veths, a bridge, SQLite.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { expect } from 'chai';
import { ErrorCode, PluginErrorCode } from '../../src/errors';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { TestNetplugin } from '../../testbed/netplugin';
import { adapterLog, BIN, hostLinkNames, inNetns, links, namedNetns, ping, processNetns, routes, type TestNetns } from '../../testbed/sys';

function post(socket: string, path: string, body: string, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'POST', headers: { 'Content-Type': contentType } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('integration: adapter + netplugin on the real kernel', () => {
  const np = new TestNetplugin({ subnet: '10.252.0.0/24', subnet6: 'fd00:252::/64', mtu: 1400 });
  const made: TestNetns[] = [];
  const add = (id: string, ns: TestNetns, conf: object = np.conf) => runAdapter(cniEnv('ADD', id, ns.path), conf);
  const del = (id: string, netns: string) => runAdapter(cniEnv('DEL', id, netns), np.conf);
  /** A namespace of its own (`ip netns add`, or an `unshare --net` process) with a pod attached in it. */
  async function attached(id: string, kind: 'named' | 'process' = 'named', conf: object = np.conf) {
    const ns = kind === 'named' ? namedNetns() : await processNetns();
    made.push(ns);
    const r = await add(id, ns, conf);
    expect(r.status, r.stdout).to.equal(0);
    return { ns, r, ip: r.json.ips[0].address as string };
  }

  before(() => np.start());
  // each test starts from a daemon with no attachment, whatever the one before it left
  afterEach(async () => {
    if (np.pid) await runAdapter({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, { ...np.conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
  });
  after(async () => {
    for (const n of made) n.remove();
    await np.destroy();
  });

  it('ADD into an `ip netns add` namespace: eth0 has the IPs, MTU, default routes; the pod pings its gateway', async () => {
    const { ns: pod, r, ip } = await attached('pod-a');
    const eth0 = r.json.interfaces[1];
    expect(eth0).to.include({ name: 'eth0', sandbox: pod.path });
    expect(ip).to.match(/^10\.252\.0\.\d+\/24$/);
    expect(r.json.ips[0].gateway).to.equal('10.252.0.1');
    expect(r.json.ips[1].address).to.match(/^fd00:252::\w+\/64$/);

    const link = links(pod.path).find((l) => l.ifname === 'eth0')!;
    expect(link.mtu).to.equal(1400);
    expect(link.operstate).to.equal('UP');
    expect(link.addr_info!.map((a) => `${a.local}/${a.prefixlen}`)).to.include.members([ip, r.json.ips[1].address]);
    expect(links(pod.path).find((l) => l.ifname === 'lo')!.operstate).to.be.oneOf(['UNKNOWN', 'UP']);
    expect(routes(pod.path).find((x) => x.dst === 'default')).to.include({ gateway: '10.252.0.1', dev: 'eth0' });
    expect(routes(pod.path, '-6').find((x) => x.dst === 'default')).to.include({ gateway: 'fd00:252::1' });
    expect(ping(pod.path, '10.252.0.1')).to.equal(true);

    const host = links().find((l) => l.ifname === r.json.interfaces[0].name)!;
    expect(host.mtu).to.equal(1400);
    expect(host.master).to.equal(np.bridge);

    const line = adapterLog(np.cniLog).find((l) => l.containerId === 'pod-a' && l.command === 'ADD');
    expect(line).to.include({ netns: pod.path, outcome: 'ok' });
    expect(line!.rewrittenNetns).to.match(/^\/proc\/\d+\/ns\/net$/);
  });

  it('ADD into an `unshare --net` process by /proc/<pid>/ns/net; it and a named-namespace pod ping each other', async () => {
    const a = await attached('ping-a');
    const b = await attached('ping-b', 'process', { ...np.conf, cniVersion: '0.3.1' });
    expect(b.r.json.cniVersion).to.equal('0.3.1');
    expect(b.r.json.ips[0].version).to.equal('4');
    expect(b.r.json.interfaces[1].sandbox).to.equal(b.ns.path);
    const [ipA, ipB] = [a.ip, b.ip].map((x) => x.split('/')[0]);
    expect(ipB).to.not.equal(ipA);
    expect(ping(b.ns.path, ipA)).to.equal(true);
    expect(ping(a.ns.path, ipB)).to.equal(true);
    expect((await del('ping-b', b.ns.path)).status).to.equal(0);
  });

  it('a second ADD for the same container fails as the spec asks and leaves the attachment untouched', async () => {
    const { ns: pod, ip } = await attached('twice');
    const portsBefore = np.bridgePorts();
    const r = await add('twice', pod);
    expect(r.status).to.not.equal(0);
    expect(r.json.code).to.equal(PluginErrorCode.AlreadyAttached);
    expect(r.json.msg).to.match(/already exists/);
    expect(np.bridgePorts()).to.deep.equal(portsBefore);
    const mine = (await np.endpoints()).filter((e) => e.containerId === 'twice');
    expect(mine).to.have.length(1);
    expect(mine[0].ipaddress).to.equal(ip);
    expect(
      links(pod.path)
        .find((l) => l.ifname === 'eth0')!
        .addr_info!.map((a) => `${a.local}/${a.prefixlen}`),
    ).to.include(ip);
  });

  it('CHECK passes for the real attachment and fails (code 100) when prevResult differs', async () => {
    const { ns: pod, ip } = await attached('checked');
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'h' }, { name: 'eth0', sandbox: pod.path }], ips: [{ interface: 1, address: ip }] };
    const ok = await runAdapter(cniEnv('CHECK', 'checked', pod.path), { ...np.conf, prevResult });
    expect(ok.status, ok.stdout).to.equal(0);
    const wrong = { ...prevResult, ips: [{ interface: 1, address: '10.252.0.250/24' }] };
    const bad = await runAdapter(cniEnv('CHECK', 'checked', pod.path), { ...np.conf, prevResult: wrong });
    expect(bad.status).to.not.equal(0);
    expect(bad.json.code).to.equal(PluginErrorCode.CheckFailed);
  });

  it('a second interface (eth1) in the same pod gets its own IP and no default route; DEL eth1 leaves eth0 whole', async () => {
    const ns = namedNetns();
    made.push(ns);
    const eth0 = await runAdapter(cniEnv('ADD', 'multi', ns.path), np.conf);
    expect(eth0.status, eth0.stdout).to.equal(0);
    const eth1 = await runAdapter(cniEnv('ADD', 'multi', ns.path, { CNI_IFNAME: 'eth1' }), np.conf);
    expect(eth1.status, eth1.stdout).to.equal(0);
    expect(eth1.json.routes).to.deep.equal([]);
    expect(eth1.json.ips[0].address).to.not.equal(eth0.json.ips[0].address);
    const defaults = routes(ns.path).filter((r) => r.dst === 'default');
    expect(defaults.map((r) => r.dev)).to.deep.equal(['eth0']);
    expect(
      links(ns.path)
        .find((l) => l.ifname === 'eth1')
        ?.addr_info?.some((a) => `${a.local}/${a.prefixlen}` === eth1.json.ips[0].address),
    ).to.equal(true);

    expect((await runAdapter(cniEnv('DEL', 'multi', ns.path, { CNI_IFNAME: 'eth1' }), np.conf)).status).to.equal(0);
    expect(links(ns.path).map((l) => l.ifname)).to.not.include('eth1');
    expect(
      routes(ns.path)
        .filter((r) => r.dst === 'default')
        .map((r) => r.dev),
    ).to.deep.equal(['eth0']);
    expect((await runAdapter(cniEnv('DEL', 'multi', ns.path), np.conf)).status).to.equal(0);
  });

  it('DEL frees the IP and the veth; a second DEL succeeds; an empty CNI_NETNS DEL succeeds', async () => {
    const { ns: pod } = await attached('deleted');
    const hostVeth = (await np.endpoints()).find((e) => e.containerId === 'deleted')!.hostVeth;
    expect((await del('deleted', pod.path)).status).to.equal(0);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(hostLinkNames()).to.not.include(hostVeth);
    expect(links(pod.path).map((l) => l.ifname)).to.deep.equal(['lo']);
    expect((await del('deleted', pod.path)).status).to.equal(0);
    expect((await del('deleted', '')).status).to.equal(0);
  });

  it('DEL after `ip netns del` still frees the IP and the host veth (kubernetes #57465)', async () => {
    const pod = namedNetns();
    made.push(pod);
    expect((await add('pod-gone', pod)).status).to.equal(0);
    const hostVeth = (await np.endpoints())[0].hostVeth;
    pod.remove();
    const r = await del('pod-gone', pod.path);
    expect(r.status, r.stdout).to.equal(0);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(hostLinkNames()).to.not.include(hostVeth);
  });

  it('an ADD that fails halfway rolls back: no veth, no allocation', async () => {
    const pod = namedNetns();
    made.push(pod);
    inNetns(pod.path, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'squat']);
    const before = hostLinkNames().sort();
    const r = await add('pod-halfway', pod);
    expect(r.status).to.not.equal(0);
    expect(r.json.msg).to.match(/already exists/);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(hostLinkNames().sort()).to.deep.equal(before);
    // the address it had reserved is handed out again
    pod.remove();
    const again = namedNetns();
    made.push(again);
    const ok = await add('pod-after-rollback', again);
    expect(ok.status, ok.stdout).to.equal(0);
    expect((await del('pod-after-rollback', again.path)).status).to.equal(0);
  });

  it('GC frees every attachment not in cni.dev/valid-attachments', async () => {
    const keep = namedNetns();
    const drop = namedNetns();
    made.push(keep, drop);
    expect((await add('gc-keep', keep)).status).to.equal(0);
    expect((await add('gc-drop', drop)).status).to.equal(0);
    const r = await runAdapter(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      { ...np.conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] },
    );
    expect(r.status, r.stdout).to.equal(0);
    expect((await np.endpoints()).map((e) => e.containerId)).to.deep.equal(['gc-keep']);
    expect(links(drop.path).map((l) => l.ifname)).to.deep.equal(['lo']);
    const noList = await runAdapter({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, { ...np.conf, cniVersion: '1.1.0' });
    expect(noList.json.code).to.equal(ErrorCode.InvalidConfig);
    expect((await del('gc-keep', keep.path)).status).to.equal(0);
  });

  it('kill -9, restart: allocations survive, and the next ADD and DEL are clean', async () => {
    const pod1 = namedNetns();
    made.push(pod1);
    const r1 = await add('survivor', pod1);
    expect(r1.status).to.equal(0);
    await np.stop('SIGKILL');
    expect(fs.existsSync(np.socket)).to.equal(true); // stale socket left behind by kill -9
    await np.start();
    const eps = await np.endpoints();
    expect(eps.map((e) => [e.containerId, e.ipaddress, e.state])).to.deep.equal([['survivor', r1.json.ips[0].address, 'ready']]);
    const pod2 = namedNetns();
    made.push(pod2);
    const r2 = await add('after-restart', pod2);
    expect(r2.status).to.equal(0);
    expect(r2.json.ips[0].address).to.not.equal(r1.json.ips[0].address);
    expect(ping(pod2.path, r1.json.ips[0].address.split('/')[0])).to.equal(true);
    expect((await del('survivor', pod1.path)).status).to.equal(0);
    expect((await del('after-restart', pod2.path)).status).to.equal(0);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(np.bridgePorts()).to.deep.equal([]);
  });

  it('100 parallel ADDs through the adapter get 100 distinct IPs; 100 DELs leave nothing', async function () {
    this.timeout(300_000);
    const pods = Array.from({ length: 100 }, () => namedNetns());
    made.push(...pods);
    const adds = await Promise.all(pods.map((p, i) => add(`par-${i}`, p)));
    const failures = adds.filter((r) => r.status !== 0);
    expect(failures.map((f) => f.stdout)).to.deep.equal([]);
    const ips = new Set(adds.map((r) => r.json.ips[0].address));
    expect(ips.size).to.equal(100);
    expect(await np.endpoints()).to.have.length(100);
    expect(np.bridgePorts()).to.have.length(100);
    const dels = await Promise.all(pods.map((p, i) => del(`par-${i}`, p.path)));
    expect(dels.filter((r) => r.status !== 0).map((r) => r.stdout)).to.deep.equal([]);
    expect(await np.endpoints()).to.deep.equal([]);
    expect(np.bridgePorts()).to.deep.equal([]);
    for (const p of pods) expect(links(p.path).map((l) => l.ifname)).to.deep.equal(['lo']);
    for (const p of pods) p.remove();
    expect(fs.readdirSync('/var/run/netns').filter((n) => pods.some((p) => p.path.endsWith(n)))).to.deep.equal([]);
  });

  it('bad bodies on the socket get result != 0 and a message; the daemon keeps serving', async () => {
    for (const [body, code] of [
      ['not json', ErrorCode.Decode],
      ['{"CNI_NETNS": 5}', ErrorCode.InvalidConfig],
      ['{"CNI_IFNAME": "eth0"}', ErrorCode.InvalidEnv],
      ['{"CNI_CONTAINERID": "x", "CNI_NETNS": "/var/run/netns/foo"}', ErrorCode.InvalidEnv],
      ['[]', ErrorCode.InvalidConfig],
    ] as const) {
      const r = await post(np.socket, '/ContivCNI.AddPod', body);
      expect(r.status, body).to.equal(500);
      expect(r.json.result, body).to.equal(code);
      expect(r.json.errmsg, body).to.be.a('string').and.not.empty;
    }
    expect((await post(np.socket, '/ContivCNI.Nope', '{}')).status).to.equal(404);
    expect(await np.endpoints()).to.deep.equal([]);
    const metrics = await np.client.metrics();
    expect(metrics).to.include('contiv_netplugin_errors_total{route="/ContivCNI.AddPod",code="6"} 1');
    expect(metrics).to.match(/contiv_netplugin_adds_total \d+/);
    expect(metrics).to.include('contiv_netplugin_ips_in_use 0');
    expect(metrics).to.match(/contiv_netplugin_add_duration_seconds_count [1-9]/);
  });

  it("answers contiv's own contivk8s request (only CNIPodAttr keys, result omitted on success)", async () => {
    const pod = await processNetns();
    made.push(pod);
    const attr = { K8S_POD_NAME: 'legacy', K8S_POD_NAMESPACE: 'default', K8S_POD_INFRA_CONTAINER_ID: 'legacy-infra', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0' };
    const r = await post(np.socket, '/ContivCNI.AddPod', JSON.stringify(attr));
    expect(r.status).to.equal(200);
    expect(r.json.ipaddress).to.match(/^10\.252\.0\.\d+\/24$/);
    expect((await post(np.socket, '/ContivCNI.DelPod', JSON.stringify(attr))).status).to.equal(200);
    expect(await np.endpoints()).to.deep.equal([]);
  });

  /** A second netplugin sharing one of the live daemon's paths; returns how it exited and what it left. */
  async function intruder(share: (other: TestNetplugin) => [string, string]): Promise<{ status: number | null; stderr: string; madeBridge: boolean }> {
    const other = new TestNetplugin({ subnet: '10.253.0.0/24' });
    try {
      const [theirs, ours] = share(other);
      const r = spawnSync(
        path.join(BIN, 'netplugin'),
        other.args().map((a) => (a === theirs ? ours : a)),
        { encoding: 'utf8', timeout: 30_000 },
      );
      return { status: r.status, stderr: r.stderr, madeBridge: hostLinkNames().includes(other.bridge) };
    } finally {
      await other.destroy();
    }
  }

  it("a live daemon's socket is never stolen; the socket is 0600 in a 0700 directory", async () => {
    const r = await intruder((other) => [other.socket, np.socket]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/already serving/);
    expect(fs.statSync(np.socket).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(np.socket.replace(/\/[^/]+$/, '')).mode & 0o777).to.equal(0o700);
    expect((await runAdapter({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, { ...np.conf, cniVersion: '1.1.0' })).status).to.equal(0);
  });

  it("a second netplugin on a live daemon's --state-dir refuses to start, creating nothing", async () => {
    const r = await intruder((other) => [other.stateDir, np.stateDir]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include(`--state-dir ${np.stateDir} is in use by another netplugin`);
    expect(r.madeBridge).to.equal(false);
    expect(await np.endpoints()).to.be.an('array');
  });

  it('SIGTERM stops the daemon cleanly and removes its socket', async () => {
    const own = new TestNetplugin({ subnet: '10.252.1.0/24' });
    try {
      await own.start();
      expect(await own.stop('SIGTERM')).to.equal(0);
      expect(fs.existsSync(own.socket)).to.equal(false);
    } finally {
      await own.destroy();
    }
  });
});
