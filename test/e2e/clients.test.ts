// What real clients exercise, driven through them: the CNI project's libcni with Debian's portmap and
// bandwidth chained after us, and containerd's go-cni attaching two networks at once (testbed/cniclient),
// against two netplugins with their own bridges and subnets. Hairpin to a pod's own hostPort and to a
// kube-proxy-style DNAT of a VIP back to it; who owns the default route; static IPs and MACs from every
// source a runtime uses, with their refusals and a race.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { expect } from 'chai';
import { ErrorCode, PluginErrorCode } from '../../src/errors';
import { cniEnv, runAdapter } from '../../testbed/adapter';
import { type CniClientRequest, cniClient, runCniClient } from '../../testbed/cniclient';
import { type CniDirs, makeCniDirs } from '../../testbed/kubelet/cni-dirs';
import { TestNetplugin } from '../../testbed/netplugin';
import { links, namedNetns, routes, type TestNetns, tryRun } from '../../testbed/sys';

const eth = (ns: TestNetns, ifname: string) => links(ns.path).find((l) => l.ifname === ifname);
const addrsOf = (ns: TestNetns, ifname: string) => (eth(ns, ifname)?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => a.local);

/** A TCP server inside a namespace that answers every connection with `reply`. */
function serveIn(ns: TestNetns, port: number, reply: string): { stop: () => void; ready: Promise<void> } {
  const child = spawn(
    'nsenter',
    [`--net=${ns.path}`, process.execPath, '-e', `require('net').createServer((s)=>s.end(${JSON.stringify(reply)})).listen(${port},()=>console.log('up'))`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const ready = new Promise<void>((resolve) => child.stdout.on('data', () => resolve()));
  return { stop: () => void child.kill(), ready };
}

/** What a connection from inside `ns` to ip:port reads back, or '' when it fails (3 s). */
function fetchFrom(ns: TestNetns, ip: string, port: number): string {
  return tryRun('nsenter', [`--net=${ns.path}`, 'busybox', 'nc', '-w', '3', ip, String(port)])?.trim() ?? '';
}

describe('e2e: real clients (libcni with portmap and bandwidth chained, go-cni)', function () {
  this.timeout(180_000);
  const a = new TestNetplugin({ subnet: '10.247.1.0/24', subnet6: 'fd00:247:1::/64' });
  const b = new TestNetplugin({ subnet: '10.247.2.0/24' });
  let dirsA: CniDirs;
  let dirsB: CniDirs;
  let cache: string;
  const made: TestNetns[] = [];
  const iptablesCleanup: string[][] = [];

  before(async () => {
    cniClient();
    await a.start();
    await b.start();
    dirsA = makeCniDirs(a.dir, { socket: a.socket, logFile: a.cniLog, chain: ['portmap', 'bandwidth'] });
    // the second network sorts after the first: go-cni gives it eth1
    dirsB = makeCniDirs(b.dir, { socket: b.socket, logFile: b.cniLog, confName: '20-contiv-b.conflist', network: 'contiv-b' });
    cache = fs.mkdtempSync('/tmp/ctvcache-');
  });
  after(async () => {
    for (const rule of iptablesCleanup.reverse()) tryRun('iptables', rule);
    for (const n of made) n.remove();
    await a.destroy();
    await b.destroy();
    fs.rmSync(cache, { recursive: true, force: true });
  });

  const pod = () => {
    const ns = namedNetns();
    made.push(ns);
    return ns;
  };
  const libcni = (op: 'add' | 'check' | 'del', ns: TestNetns, id: string, extra: Partial<CniClientRequest> = {}) =>
    runCniClient({ op, binDirs: [dirsA.binDir], confFiles: [dirsA.conflist], cacheDir: cache, netns: ns.path, containerId: id, ...extra });

  describe('hairpin', () => {
    it('a pod reaches itself through its own hostPort (portmap chained by libcni)', async () => {
      const ns = pod();
      const portMappings = [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }];
      const r = await libcni('add', ns, 'hairpin-hostport', { capabilityArgs: { portMappings } });
      const server = serveIn(ns, 8080, 'hello from myself');
      try {
        expect(r.status, r.error).to.equal(0);
        await server.ready;
        expect(fetchFrom(ns, '10.247.1.1', 18080)).to.equal('hello from myself');
      } finally {
        server.stop();
        // portmap's DNAT rules go with the pod, on failure too (a leftover rule would shadow the next run's)
        expect((await libcni('del', ns, 'hairpin-hostport', { capabilityArgs: { portMappings } })).status).to.equal(0);
      }
      expect(execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })).to.not.include('18080');
    });

    it('a pod reaches itself through a Service VIP that a kube-proxy-style DNAT sends back to it; with hairpinMode off it cannot', async () => {
      const vip = '10.96.247.10';
      const run = async (id: string, conf: object) => {
        const ns = pod();
        const add = await runAdapter(cniEnv('ADD', id, ns.path), { ...a.conf, ...conf });
        expect(add.status, add.stdout).to.equal(0);
        const ip = add.json.ips[0].address.split('/')[0];
        const dnat = ['-t', 'nat', '-I', 'PREROUTING', '-d', `${vip}/32`, '-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', `${ip}:8080`];
        const masq = ['-t', 'nat', '-I', 'POSTROUTING', '-s', `${ip}/32`, '-d', `${ip}/32`, '-j', 'MASQUERADE'];
        for (const rule of [dnat, masq]) {
          execFileSync('iptables', rule);
          iptablesCleanup.push(rule.map((x) => (x === '-I' ? '-D' : x)));
        }
        const server = serveIn(ns, 8080, `vip ${id}`);
        try {
          await server.ready;
          return fetchFrom(ns, vip, 80);
        } finally {
          server.stop();
          for (const rule of [dnat, masq])
            tryRun(
              'iptables',
              rule.map((x) => (x === '-I' ? '-D' : x)),
            );
          await runAdapter(cniEnv('DEL', id, ns.path), { ...a.conf, ...conf });
        }
      };
      expect(await run('vip-on', {})).to.equal('vip vip-on');
      expect(await run('vip-off', { hairpinMode: false })).to.equal('');
    });
  });

  describe('the default route follows configuration, not order', () => {
    const defaults = (ns: TestNetns) =>
      routes(ns.path)
        .filter((r) => r.dst === 'default')
        .map((r) => `${r.dev} via ${r.gateway}`);

    it('two networks from two daemons: eth0 gets it, net1 none (no EEXIST); DEL and re-ADD of eth0 with net1 attached gets it back', async () => {
      const ns = pod();
      const other = (op: 'add' | 'check' | 'del') =>
        runCniClient({ op, binDirs: [dirsB.binDir], confFiles: [dirsB.conflist], cacheDir: cache, netns: ns.path, containerId: 'routes', ifname: 'net1' });
      expect((await libcni('add', ns, 'routes')).status).to.equal(0);
      const net1 = await other('add');
      expect(net1.status, net1.error).to.equal(0);
      expect(net1.result.routes ?? []).to.deep.equal([]);
      expect(defaults(ns)).to.deep.equal(['eth0 via 10.247.1.1']);
      // libcni's CHECK hands the cached result to the plugin as prevResult (B chains nothing: Debian's bandwidth
      // panics on a CHECK without limits, and its portmap checks an ip6tables chain it never made)
      const check = await other('check');
      expect(check.status, check.error).to.equal(0);
      expect((await libcni('del', ns, 'routes')).status).to.equal(0);
      expect(defaults(ns)).to.deep.equal([]);
      expect((await libcni('add', ns, 'routes')).status).to.equal(0);
      expect(defaults(ns)).to.deep.equal(['eth0 via 10.247.1.1']);
      expect(addrsOf(ns, 'net1')).to.have.length(1);
      expect((await other('del')).status).to.equal(0);
      expect((await libcni('del', ns, 'routes')).status).to.equal(0);
    });

    it("go-cni's concurrent Setup of two networks: the default route is on eth0 every time (12 runs)", async () => {
      for (let run = 0; run < 12; run++) {
        const ns = pod();
        const req = {
          binDirs: [dirsA.binDir, dirsB.binDir],
          confFiles: [dirsA.conflist, dirsB.conflist],
          cacheDir: cache,
          netns: ns.path,
          containerId: `gocni-${run}`,
        };
        const up = await runCniClient({ op: 'setup', ...req });
        expect(up.status, up.error).to.equal(0);
        expect(defaults(ns), `run ${run}`).to.deep.equal(['eth0 via 10.247.1.1']);
        expect(addrsOf(ns, 'eth1')[0]).to.match(/^10\.247\.2\./);
        expect((await runCniClient({ op: 'teardown', ...req })).status).to.equal(0);
        ns.remove();
      }
    });
  });

  describe('static IPs and MACs', () => {
    it('through libcni runtimeConfig (the ips and mac capabilities the conflist declares)', async () => {
      const ns = pod();
      const r = await libcni('add', ns, 'static-rc', { capabilityArgs: { ips: ['10.247.1.77/24', 'fd00:247:1::77/64'], mac: '02:47:00:00:00:77' } });
      expect(r.status, r.error).to.equal(0);
      expect(r.result.ips.map((i: { address: string }) => i.address)).to.deep.equal(['10.247.1.77/24', 'fd00:247:1::77/64']);
      expect(eth(ns, 'eth0')?.address).to.equal('02:47:00:00:00:77');
      expect(addrsOf(ns, 'eth0')).to.include.members(['10.247.1.77', 'fd00:247:1::77']);
      expect((await libcni('del', ns, 'static-rc')).status).to.equal(0);
    });

    it('through CNI_ARGS IP= and MAC= with IgnoreUnknown, as podman sends them', async () => {
      const ns = pod();
      const args: [string, string][] = [
        ['IgnoreUnknown', '1'],
        ['IP', '10.247.1.78'],
        ['MAC', '02:47:00:00:00:78'],
      ];
      const r = await libcni('add', ns, 'static-args', { args });
      expect(r.status, r.error).to.equal(0);
      expect(addrsOf(ns, 'eth0')).to.include('10.247.1.78');
      expect(eth(ns, 'eth0')?.address).to.equal('02:47:00:00:00:78');
      expect((await libcni('del', ns, 'static-args', { args })).status).to.equal(0);
    });

    it('through args.cni.ips in the configuration', async () => {
      const ns = pod();
      const r = await runAdapter(cniEnv('ADD', 'static-conf', ns.path), { ...a.conf, args: { cni: { ips: ['10.247.1.79'] } } });
      expect(r.status, r.stdout).to.equal(0);
      expect(addrsOf(ns, 'eth0')).to.include('10.247.1.79');
      expect((await runAdapter(cniEnv('DEL', 'static-conf', ns.path), a.conf)).status).to.equal(0);
    });

    it('refuses with the address and the reason, allocating nothing: outside the pool, in use, sources that disagree', async () => {
      const ns = pod();
      const holder = pod();
      expect((await libcni('add', holder, 'holder', { capabilityArgs: { ips: ['10.247.1.80/24'] } })).status).to.equal(0);
      const before = (await a.endpoints()).length;
      for (const [extra, code, msg] of [
        [
          { capabilityArgs: { ips: ['10.247.9.5/24'] } },
          ErrorCode.InvalidConfig,
          /requested IP 10\.247\.9\.5: not an assignable address of this node's pool 10\.247\.1\.0\/24/,
        ],
        [{ capabilityArgs: { ips: ['10.247.1.80/24'] } }, PluginErrorCode.AddressInUse, /requested IP 10\.247\.1\.80 is in use by holder\/eth0/],
        [{ capabilityArgs: { mac: '01:00:5e:00:00:01' } }, ErrorCode.InvalidConfig, /multicast/],
        [
          { capabilityArgs: { ips: ['10.247.1.81/24'] }, args: [['IgnoreUnknown', '1'] as [string, string], ['IP', '10.247.1.82'] as [string, string]] },
          ErrorCode.InvalidConfig,
          /static IPs requested differently by runtimeConfig\.ips and CNI_ARGS IP/,
        ],
      ] as const) {
        const r = await libcni('add', ns, 'refused', extra as Partial<CniClientRequest>);
        expect(r.status, JSON.stringify(extra)).to.equal(1);
        expect(r.error).to.match(msg);
        expect(r.error).to.not.include('UNIQUE');
        expect(r.code, r.error).to.equal(code);
        await libcni('del', ns, 'refused', extra as Partial<CniClientRequest>);
      }
      expect((await a.endpoints()).length).to.equal(before);
      expect(links(ns.path).map((l) => l.ifname)).to.deep.equal(['lo']);
      expect((await libcni('del', holder, 'holder')).status).to.equal(0);
    });

    it('concurrent requests for one address: exactly one wins', async () => {
      const pods = [pod(), pod(), pod(), pod()];
      const results = await Promise.all(pods.map((ns, i) => libcni('add', ns, `race-${i}`, { capabilityArgs: { ips: ['10.247.1.90/24'] } })));
      expect(results.filter((r) => r.status === 0)).to.have.length(1);
      for (const r of results.filter((x) => x.status !== 0)) expect(r.error).to.match(/10\.247\.1\.90 is in use/);
      expect((await a.endpoints()).filter((e) => e.ipaddress === '10.247.1.90/24')).to.have.length(1);
      await Promise.all(pods.map((ns, i) => libcni('del', ns, `race-${i}`)));
    });
  });

  it('bandwidth chained after us gets our result and shapes the host veth', async () => {
    const ns = pod();
    const r = await libcni('add', ns, 'shaped', {
      capabilityArgs: { bandwidth: { ingressRate: 1_000_000, ingressBurst: 100_000, egressRate: 1_000_000, egressBurst: 100_000 } },
    });
    expect(r.status, r.error).to.equal(0);
    const hostVeth = r.result.interfaces[0].name;
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', hostVeth], { encoding: 'utf8' })).to.match(/tbf/);
    expect((await libcni('del', ns, 'shaped')).status).to.equal(0);
  });
});
