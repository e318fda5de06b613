// A private containerd (Debian's 1.6, CRI plugin included) on its own socket, root and state dirs, with
// its CNI bin_dir and conf_dir pointing at ours, for tests and the demo. It never touches the node's own
// containerd (if any) and stop() removes every sandbox, shim, mount and file it made.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountinfoEntries } from '../../src/netns/inventory';
import { waitFor } from '../sys';
import { CriClient } from './cri';

export const CRI_NAMESPACE = 'k8s.io';

export interface ContainerdOptions {
  /** Everything lives under it: config, socket, root, state, log. */
  dir: string;
  cniBinDir: string;
  cniConfDir: string;
  sandboxImage: string;
}

// Plugins that would look for devices or host paths this VM does not have, or write outside `dir`
// (the opt plugin creates /opt/containerd).
const DISABLED_PLUGINS = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.internal.v1.opt',
  'io.containerd.tracing.processor.v1.otlp',
];

export function containerdConfig(o: ContainerdOptions): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(path.join(o.dir, 'root'))}
state = ${q(path.join(o.dir, 'state'))}
disabled_plugins = ${q(DISABLED_PLUGINS)}

[grpc]
  address = ${q(path.join(o.dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(path.join(o.dir, 'containerd.sock.ttrpc'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(o.sandboxImage)}
  # this VM lacks CAP_SYS_RESOURCE: a sandbox may not lower its oom_score_adj below containerd's
  restrict_oom_score_adj = true
  # a free port, so that it never collides with a node containerd's 10010
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = ${q(path.join(o.dir, 'runc'))}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(o.cniBinDir)}
    conf_dir = ${q(o.cniConfDir)}
    max_conf_num = 1
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PrivateContainerd {
  readonly socket: string;
  readonly logFile: string;
  private child?: ChildProcess;
  private criClient?: CriClient;

  constructor(readonly opts: ContainerdOptions) {
    this.socket = path.join(opts.dir, 'containerd.sock');
    this.logFile = path.join(opts.dir, 'containerd.log');
  }

  get cri(): CriClient {
    this.criClient ??= new CriClient(this.socket);
    return this.criClient;
  }

  /** Starts containerd and waits until its CRI service answers. */
  async start(): Promise<void> {
    fs.mkdirSync(this.opts.dir, { recursive: true });
    const config = path.join(this.opts.dir, 'config.toml');
    fs.writeFileSync(config, containerdConfig(this.opts));
    const log = fs.openSync(this.logFile, 'a');
    // its own process group: a Ctrl-C meant for the demo must not kill containerd before the demo has
    // removed its sandboxes through it (that would leave netns bind mounts and veths behind)
    this.child = spawn('containerd', ['--config', config, '--log-level', 'info'], { stdio: ['ignore', log, log], detached: true });
    fs.closeSync(log);
    const child = this.child;
    let lastError = '';
    await waitFor(
      `containerd's CRI on ${this.socket}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode}; log ${this.logFile}:\n${this.logTail()}`);
        if (!fs.existsSync(this.socket)) return false;
        try {
          await this.cri.version();
          return true;
        } catch (err) {
          lastError = (err as Error).message;
          return false;
        }
      },
      30_000,
    ).catch((err: Error) => {
      throw child.exitCode === null ? new Error(`${err.message}: ${lastError}; log:\n${this.logTail()}`) : err;
    });
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Runs `ctr` against this containerd. */
  ctr(args: string[], namespace = CRI_NAMESPACE, input?: string): string {
    return execFileSync('ctr', ['--address', this.socket, '--namespace', namespace, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  }

  importImage(tarball: string, namespace = CRI_NAMESPACE): void {
    this.ctr(['image', 'import', tarball], namespace);
  }

  /**
   * Removes every sandbox through CRI (which runs CNI DEL), stops containerd, kills any shim of ours that
   * outlived it, unmounts what it left mounted under `dir`, and removes `dir`. Safe to call twice.
   */
  async stop(keepDir = false): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      try {
        for (const id of await this.cri.listPodSandboxIds()) {
          await this.cri.stopPodSandbox(id).catch(() => undefined);
          await this.cri.removePodSandbox(id).catch(() => undefined);
        }
      } catch {
        /* CRI down: the shims are killed below */
      }
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    this.criClient?.close();
    this.criClient = undefined;
    this.killShims();
    unmountUnder(this.opts.dir);
    if (!keepDir) fs.rmSync(this.opts.dir, { recursive: true, force: true });
  }

  /** containerd-shim-runc-v2 processes started for this containerd (their -address is our socket). */
  private killShims(): void {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmdline: string[];
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (path.basename(cmdline[0]).startsWith('containerd-shim') && cmdline.includes(this.socket)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  }
}

/** Unmounts every mount point under `dir`, deepest first (overlay rootfs, sandbox shm). */
export function unmountUnder(dir: string): void {
  const prefix = `${path.resolve(dir)}/`;
  const points = mountinfoEntries(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((p) => p.startsWith(prefix));
  for (const p of points.sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', ['-l', p], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

/**
 * `ctr run --rm --cni <image> <id> <cmd...>` against this containerd. ctr reads its CNI config only from
 * /etc/cni/net.d and its plugins from fixed dirs, so it runs in a private mount namespace where ours are
 * mounted over those: the node's own CNI config is never touched. The child's stdout is the container's.
 */
export function ctrRunCni(
  containerd: PrivateContainerd,
  cni: { binDir: string; confDir: string },
  namespace: string,
  image: string,
  id: string,
  cmd: string[],
): ChildProcess {
  const dir = containerd.opts.dir;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    `mount -t tmpfs tmpfs /etc/cni/net.d`,
    `cp ${q(cni.confDir)}/*.conflist /etc/cni/net.d/`,
    `for d in /opt/cni/bin /usr/lib/cni; do if [ -d $d ]; then mount --bind ${q(cni.binDir)} $d; fi; done`,
    `exec ctr --address ${q(containerd.socket)} --namespace ${q(namespace)} run --rm --cni ` +
      `--fifo-dir ${q(path.join(dir, 'fifo'))} --runc-root ${q(path.join(dir, 'runc'))} ${q(image)} ${q(id)} ${cmd.map(q).join(' ')}`,
  ].join(' && ');
  return spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}
