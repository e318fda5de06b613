// A cluster on one machine: an underlay bridge; etcd (Debian's etcd-server) with one or three members, each in
// its own network namespace on it, over mutual TLS unless told otherwise; and nodes, each a network namespace
// on the underlay running its own netplugin in cluster mode. The host has an address on the underlay too, so
// tests, the bench and contivctl reach etcd directly. All traffic stays between these namespaces; destroy()
// removes every one of them.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../src/etcd/connect';
import { makeCerts, type TestCerts } from './certs';
import { TestNetplugin } from './netplugin';
import { BIN, sh, tryRun, uniq, waitFor } from './sys';

export const UNDERLAY = '192.168.213';
export const HOST_IP = `${UNDERLAY}.254`;
export const CLUSTER_CIDR = '10.200.0.0/16';
export const CLUSTER_CIDR6 = 'fd00:200::/56';
export const LEASE_TTL = 4;

export interface TestNode {
  name: string;
  netns: string;
  ip: string;
  np: TestNetplugin;
}

interface Member {
  name: string;
  netns: string;
  ip: string;
  log: string;
  child?: ChildProcess;
}

export interface ClusterOptions {
  /** etcd members: 1, or 3 for quorum tests. */
  members?: number;
  /** Mutual TLS between everyone and etcd (default); false runs plain HTTP and passes --etcd-insecure. */
  tls?: boolean;
  /** Dual stack: every node gets an IPv6 block from CLUSTER_CIDR6 too. */
  dualStack?: boolean;
}

export class TestCluster {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctvcluster-'));
  readonly underlay = uniq('ctvul', 4);
  readonly nodes: TestNode[] = [];
  readonly members: Member[];
  readonly certs?: TestCerts;
  private readonly namespaces: string[] = [];
  /** The host ends of the underlay veths: deleted by name, since a namespace held by a killed etcd's
   * orphaned TCP sockets lingers (with its veth) until those time out. */
  private readonly underlayVeths: string[] = [];

  constructor(readonly opts: ClusterOptions = {}) {
    const id = uniq('', 3);
    this.members = Array.from({ length: opts.members ?? 1 }, (_, i) => ({
      name: `e${i}`,
      netns: `ctvetcd-${id}-${i}`,
      ip: `${UNDERLAY}.${10 + i}`,
      log: path.join(this.dir, `etcd-e${i}.log`),
    }));
    if (opts.tls !== false)
      this.certs = makeCerts(
        path.join(this.dir, 'pki'),
        this.members.map((m) => m.ip),
      );
  }

  get scheme(): string {
    return this.certs ? 'https' : 'http';
  }

  get endpoints(): string[] {
    return this.members.map((m) => `${this.scheme}://${m.ip}:2379`);
  }

  /** The flags the netplugin and `contivctl cluster` take to reach this etcd. */
  etcdFlags(): string[] {
    const c = this.certs;
    return [
      '--etcd-endpoints',
      this.endpoints.join(','),
      ...(c ? ['--etcd-ca', c.ca, '--etcd-cert', c.clientCert, '--etcd-key', c.clientKey] : ['--etcd-insecure']),
    ];
  }

  /** An etcd client for the test itself, with the client certificate. */
  private etcd?: Etcd3;

  /** One client for the whole cluster's life (a new one per call would pay gRPC and TLS set-up to every member each time). */
  client(): Etcd3 {
    const c = this.certs;
    this.etcd ??= connectEtcd({ endpoints: this.endpoints, ...(c ? { ca: c.ca, cert: c.clientCert, key: c.clientKey } : { insecure: true }) });
    return this.etcd;
  }

  /**
   * Resolves once the running members take writes. A killed member may have been the leader: the others then
   * elect one (etcd's election timeout is 1 s), and until they have, no write anywhere succeeds.
   */
  async writable(timeoutMs = 15_000): Promise<void> {
    const probe = '/contiv-test/writable';
    await waitFor(
      'the running etcd members to take writes (a leader elected)',
      async () => {
        try {
          await this.client().put(probe).value(String(Date.now()));
          await this.client().delete().key(probe);
          return true;
        } catch {
          return false;
        }
      },
      timeoutMs,
    );
  }

  /** A namespace with a veth on the underlay bridge and `ip` on it. */
  private attach(netns: string, ip: string): void {
    sh('ip', ['netns', 'add', netns]);
    this.namespaces.push(netns);
    const host = uniq('ctvu', 5);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', netns]);
    this.underlayVeths.push(host);
    sh('ip', ['link', 'set', host, 'master', this.underlay, 'up']);
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', `${ip}/24`, 'dev', 'ul0'],
      ['link', 'set', 'ul0', 'up'],
    ])
      sh('ip', ['-n', netns, ...args]);
  }

  async start(): Promise<void> {
    sh('ip', ['link', 'add', this.underlay, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', this.underlay]);
    sh('ip', ['link', 'set', this.underlay, 'up']);
    for (const m of this.members) this.attach(m.netns, m.ip);
    await Promise.all(this.members.map((_, i) => this.startMember(i)));
  }

  async startMember(i: number): Promise<void> {
    const m = this.members[i];
    const c = this.certs;
    const peerUrl = (x: Member) => `${this.scheme}://${x.ip}:2380`;
    const tls = c
      ? [
          '--cert-file',
          c.serverCert,
          '--key-file',
          c.serverKey,
          '--client-cert-auth',
          '--trusted-ca-file',
          c.ca,
          '--peer-cert-file',
          c.serverCert,
          '--peer-key-file',
          c.serverKey,
          '--peer-client-cert-auth',
          '--peer-trusted-ca-file',
          c.ca,
        ]
      : [];
    const log = fs.openSync(m.log, 'a');
    m.child = spawn(
      'ip',
      [
        'netns',
        'exec',
        m.netns,
        'etcd',
        '--name',
        m.name,
        '--data-dir',
        path.join(this.dir, `etcd-${m.name}`),
        '--listen-client-urls',
        this.endpoints[i],
        '--advertise-client-urls',
        this.endpoints[i],
        '--listen-peer-urls',
        peerUrl(m),
        '--initial-advertise-peer-urls',
        peerUrl(m),
        '--initial-cluster',
        this.members.map((x) => `${x.name}=${peerUrl(x)}`).join(','),
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        path.basename(this.dir),
        ...tls,
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    const started = fs.readFileSync(m.log, 'utf8').length;
    const child = m.child;
    await waitFor(
      `etcd ${m.name} to serve clients`,
      () => {
        const text = fs.readFileSync(m.log, 'utf8');
        if (child.exitCode !== null) throw new Error(`etcd ${m.name} exited: ${text.slice(-2000)}`);
        return text.slice(started).includes('ready to serve client requests');
      },
      30_000,
    );
  }

  async stopMember(i: number): Promise<void> {
    const child = this.members[i].child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async addNode(name: string, octet: number, extraArgs: string[] = []): Promise<TestNode> {
    const netns = `${uniq('ctvnode-', 3)}-${name}`;
    this.attach(netns, `${UNDERLAY}.${octet}`);
    const np = new TestNetplugin({
      subnet: '10.255.255.0/24', // not used in cluster mode: the block comes from etcd
      netns,
      extraArgs: [
        '--store',
        'etcd',
        ...this.etcdFlags(),
        '--node-name',
        name,
        '--node-ip',
        `${UNDERLAY}.${octet}`,
        '--cluster-cidr',
        CLUSTER_CIDR,
        ...(this.opts.dualStack ? ['--cluster-cidr6', CLUSTER_CIDR6] : []),
        '--lease-ttl',
        String(LEASE_TTL),
        ...extraArgs,
      ],
    });
    const node = { name, netns, ip: `${UNDERLAY}.${octet}`, np };
    this.nodes.push(node);
    await np.start();
    return node;
  }

  /** Stops a node's netplugin and removes its namespace (and with it its bridge and VXLAN device). */
  async removeNode(node: TestNode): Promise<void> {
    await node.np.destroy();
    tryRun('ip', ['netns', 'del', node.netns]);
    this.nodes.splice(this.nodes.indexOf(node), 1);
    this.namespaces.splice(this.namespaces.indexOf(node.netns), 1);
  }

  /** `contivctl cluster <args> --json`; throws with its stderr when it fails. */
  contivctl(args: string[]): any {
    const r = this.contivctlRun(args);
    if (r.status !== 0) throw new Error(`contivctl cluster ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  contivctlRun(args: string[], etcdFlags = this.etcdFlags()): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(path.join(BIN, 'contivctl'), ['cluster', ...args, ...etcdFlags, '--json'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });
  }

  state(): {
    nodes: { name: string; block: string; block6?: string }[];
    blocks: { block: string; node: string; ips: number; ownerAlive: boolean }[];
    ips: { ip: string; node: string; containerId: string }[];
  } {
    return this.contivctl(['show']);
  }

  async destroy(): Promise<void> {
    this.etcd?.close();
    for (const n of this.nodes) await n.np.destroy();
    for (let i = 0; i < this.members.length; i++) await this.stopMember(i);
    for (const ns of this.namespaces) tryRun('ip', ['netns', 'del', ns]);
    for (const veth of this.underlayVeths) tryRun('ip', ['link', 'del', veth]);
    tryRun('ip', ['link', 'del', this.underlay]);
    if (!process.env.CTV_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
