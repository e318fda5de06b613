// Debian's podman 4.3 on its own storage, run root and CNI dirs. Its default network backend is netavark;
// ours is a CNI plugin, so a private containers.conf selects the CNI backend and points it at our dirs.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unmountUnder } from './containerd';

// this VM lacks CAP_SYS_RESOURCE: podman's default rlimits would exceed the hard limits it may set
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

export class PrivatePodman {
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly dir: string,
    cni: { binDir: string; confDir: string },
  ) {
    fs.mkdirSync(dir, { recursive: true });
    const conf = path.join(dir, 'containers.conf');
    const q = JSON.stringify;
    fs.writeFileSync(
      conf,
      [
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = ${q(path.join(dir, 'events.log'))}`,
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = [${q(cni.binDir)}]`,
        `network_config_dir = ${q(cni.confDir)}`,
        '',
      ].join('\n'),
    );
    this.env = { ...process.env, CONTAINERS_CONF: conf };
  }

  private args(args: string[]): string[] {
    return ['--root', path.join(this.dir, 'storage'), '--runroot', path.join(this.dir, 'runroot'), '--tmpdir', path.join(this.dir, 'tmp'), ...args];
  }

  podman(args: string[]): string {
    return execFileSync('podman', this.args(args), { encoding: 'utf8', env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `podman run --rm --network <network> [runArgs] <image> <cmd...>`; the child's stdout is the container's. */
  run(network: string, image: string, cmd: string[], runArgs: string[] = []): ChildProcess {
    return spawn('podman', this.args(['run', '--rm', '--network', network, ...ULIMITS, ...runArgs, image, ...cmd]), {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Removes every container (their CNI DEL runs), unmounts the storage and removes the dir. */
  destroy(): void {
    try {
      this.podman(['rm', '--all', '--force', '--time', '0']);
    } catch {
      /* nothing to remove, or podman is broken: the unmount below still runs */
    }
    unmountUnder(this.dir);
    if (!process.env.CTV_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
