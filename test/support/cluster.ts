// A cluster on one machine: an underlay bridge; etcd (Debian's etcd-server) in its own network namespace
// on it; and nodes, each a network namespace on the underlay running its own netplugin in cluster mode.
// Pods are `ip netns add` namespaces wired by the real adapter through their node's netplugin. All
// traffic stays between these namespaces; destroy() removes every one of them.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, ROOT, sh, tryRun, uniq } from './sys';
import { TestNetplugin } from './netplugin';

export const UNDERLAY = '192.168.213';
export const CLUSTER_CIDR = '10.200.0.0/16';
export const LEASE_TTL = 4;

export interface TestNode {
  name: string;
  netns: string;
  ip: string;
  np: TestNetplugin;
}

export class TestCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctvcluster-'));
  readonly underlay = uniq('ctvul', 4);
  readonly etcdNetns = uniq('ctvetcd-', 4);
  readonly etcdUrl = `http://${UNDERLAY}.10:2379`;
  readonly nodes: TestNode[] = [];
  private readonly namespaces: string[] = [];
  private etcd?: ChildProcess;

  /** A namespace with a veth on the underlay bridge and `ip` on it. */
  private attach(netns: string, ip: string): void {
    sh('ip', ['netns', 'add', netns]);
    this.namespaces.push(netns);
    const host = uniq('ctvu', 5);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', netns]);
    sh('ip', ['link', 'set', host, 'master', this.underlay, 'up']);
    for (const args of [['link', 'set', 'lo', 'up'], ['addr', 'add', `${ip}/24`, 'dev', 'ul0'], ['link', 'set', 'ul0', 'up']]) sh('ip', ['-n', netns, ...args]);
  }

  async start(): Promise<void> {
    sh('ip', ['link', 'add', this.underlay, 'type', 'bridge']);
    sh('ip', ['link', 'set', this.underlay, 'up']);
    this.attach(this.etcdNetns, `${UNDERLAY}.10`);
    await this.startEtcd();
  }

  async startEtcd(): Promise<void> {
    const peer = `http://${UNDERLAY}.10:2380`;
    const log = fs.openSync(path.join(this.dir, 'etcd.log'), 'a');
    this.etcd = spawn('ip', ['netns', 'exec', this.etcdNetns, 'etcd', '--name', 'e0', '--data-dir', path.join(this.dir, 'etcd'),
      '--listen-client-urls', this.etcdUrl, '--advertise-client-urls', this.etcdUrl, '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer, '--initial-cluster', `e0=${peer}`, '--initial-cluster-state', 'new'], { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    for (let i = 0; i < 100; i++) {
      if (this.etcd.exitCode !== null) throw new Error(`etcd exited: ${fs.readFileSync(path.join(this.dir, 'etcd.log'), 'utf8').slice(-2000)}`);
      if (fs.readFileSync(path.join(this.dir, 'etcd.log'), 'utf8').includes('ready to serve client requests')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('etcd did not become ready');
  }

  async stopEtcd(): Promise<void> {
    const etcd = this.etcd;
    if (!etcd || etcd.exitCode !== null) return;
    const exited = new Promise((r) => etcd.once('exit', r));
    etcd.kill('SIGKILL');
    await exited;
  }

  async addNode(name: string, octet: number): Promise<TestNode> {
    const netns = `${uniq('ctvnode-', 3)}-${name}`;
    this.attach(netns, `${UNDERLAY}.${octet}`);
    const np = new TestNetplugin({
      subnet: '10.255.255.0/24', // not used in cluster mode: the block comes from etcd
      netns,
      extraArgs: ['--store', 'etcd', '--etcd-endpoints', this.etcdUrl, '--node-name', name, '--node-ip', `${UNDERLAY}.${octet}`, '--cluster-cidr', CLUSTER_CIDR, '--lease-ttl', String(LEASE_TTL)],
    });
    const node = { name, netns, ip: `${UNDERLAY}.${octet}`, np };
    this.nodes.push(node);
    await np.start();
    return node;
  }

  /** `contivctl <args>` run inside a node's namespace, where etcd is reachable. */
  contivctl(node: TestNode, args: string[]): any {
    const r = spawnSync('ip', ['netns', 'exec', node.netns, path.join(BIN, 'contivctl'), ...args, '--json'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`contivctl ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** Deletes keys straight in etcd (from inside a node, where etcd is reachable), as an operator would. */
  etcdDeletePrefix(node: TestNode, prefix: string): void {
    const script = `const { Etcd3 } = require('etcd3'); const c = new Etcd3({ hosts: ${JSON.stringify(this.etcdUrl)} });
      c.delete().prefix(${JSON.stringify(prefix)}).exec().then(() => c.close(), (e) => { console.error(e.message); process.exit(1); });`;
    const r = spawnSync('ip', ['netns', 'exec', node.netns, process.execPath, '-e', script], { encoding: 'utf8', cwd: ROOT });
    if (r.status !== 0) throw new Error(`deleting ${prefix} in etcd: ${r.stderr}`);
  }

  state(node = this.nodes[0]): { nodes: { name: string; block: string }[]; blocks: { block: string; node: string; ips: number; ownerAlive: boolean }[]; ips: { ip: string; node: string; containerId: string }[] } {
    return this.contivctl(node, ['cluster', '--etcd-endpoints', this.etcdUrl]);
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.np.destroy();
    await this.stopEtcd();
    for (const ns of this.namespaces) tryRun('ip', ['netns', 'del', ns]);
    tryRun('ip', ['link', 'del', this.underlay]);
    if (!process.env.CTV_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
