// A real netplugin process on its own socket, state dir, bridge and subnet; stop() removes all of it.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { axiosClient } from '../src/api/axios-transport';
import type { NetpluginClient } from '../src/api/client';
import type { Endpoint } from '../src/api/wire';
import { ipJson } from '../src/linux/iproute';
import { BIN, hostLinkNames, tryRun, uniq } from './sys';

export interface NetpluginOptions {
  subnet: string;
  subnet6?: string;
  mtu?: number;
  /** A command that execs the netplugin in a changed context (setpriv, unshare). */
  wrap?: string[];
  /** Runs it inside this named network namespace (a cluster test's node): its bridge and veths are there. */
  netns?: string;
  extraArgs?: string[];
  /** A state dir to start from (copied): an earlier release's, for upgrade tests. */
  seedState?: string;
}

export class TestNetplugin {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctvnp-'));
  readonly socket = path.join(this.dir, 'run', 'contiv-cni.sock');
  readonly stateDir = path.join(this.dir, 'state');
  readonly logFile = path.join(this.dir, 'netplugin.log');
  /** The adapter's log (the conflist's logFile). */
  readonly cniLog = path.join(this.dir, 'cni.log');
  readonly bridge = uniq('ctvbr', 4);
  private child?: ChildProcess;

  constructor(readonly opts: NetpluginOptions) {}

  get conf(): Record<string, unknown> {
    return { cniVersion: '1.0.0', name: 'contiv-test', type: 'contivk8s', socket: this.socket, logFile: this.cniLog };
  }

  args(): string[] {
    return [
      '--socket',
      this.socket,
      '--state-dir',
      this.stateDir,
      '--bridge',
      this.bridge,
      '--subnet',
      this.opts.subnet,
      ...(this.opts.subnet6 ? ['--subnet6', this.opts.subnet6] : []),
      ...(this.opts.mtu ? ['--mtu', String(this.opts.mtu)] : []),
      '--log-file',
      this.logFile,
      '--log-level',
      'debug',
      ...(this.opts.extraArgs ?? []),
    ];
  }

  async start(): Promise<void> {
    if (this.opts.seedState && !fs.existsSync(this.stateDir)) fs.cpSync(this.opts.seedState, this.stateDir, { recursive: true });
    const stderrFile = path.join(this.dir, 'stderr.log');
    // its own process group, so that a Ctrl-C leaves it serving the DELs of the teardown
    const wrap = this.opts.netns ? ['ip', 'netns', 'exec', this.opts.netns] : (this.opts.wrap ?? []);
    const [cmd, ...args] = [...wrap, path.join(BIN, 'netplugin'), ...this.args()];
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', fs.openSync(stderrFile, 'a')], detached: true });
    const stderr = () => fs.readFileSync(stderrFile, 'utf8');
    this.child = child;
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`netplugin exited ${child.exitCode}: ${stderr()}`);
      if (await axiosClient(this.socket, 500).healthy()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`netplugin not ready on ${this.socket}: ${stderr()}`);
  }

  /** `ip` arguments that address the netns the daemon runs in. */
  get ipNetns(): string[] {
    return this.opts.netns ? ['-n', this.opts.netns] : [];
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** SIGTERM and wait; resolves to the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    const code = await done;
    this.child = undefined;
    return code;
  }

  /** The daemon's API, as contivctl uses it. */
  get client(): NetpluginClient {
    return axiosClient(this.socket, 5000);
  }

  async endpoints(): Promise<Endpoint[]> {
    return this.client.endpoints();
  }

  /** Our host veths still attached to this daemon's bridge (none when the bridge is gone). */
  bridgePorts(): string[] {
    try {
      return ipJson(['link', 'show', 'master', this.bridge], this.opts.netns && `/var/run/netns/${this.opts.netns}`).map((l) => l.ifname);
    } catch {
      return [];
    }
  }

  /** Stops the daemon and removes its bridge, any veths it left and its files. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    for (const port of this.bridgePorts()) tryRun('ip', [...this.ipNetns, 'link', 'del', port]);
    if (this.opts.netns || hostLinkNames().includes(this.bridge)) tryRun('ip', [...this.ipNetns, 'link', 'del', this.bridge]);
    // CTV_KEEP_TEST_DIRS=1 keeps the daemon's logs, stderr and state for a post-mortem
    if (!process.env.CTV_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
