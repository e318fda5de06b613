// Debian's buildah on its own storage, and the Debian base image deploy/Dockerfile builds FROM, made without
// pulling: debootstrap's minimal bookworm from Debian's mirror (the one network this machine reaches besides
// npm), cached as a tarball across runs, imported as localhost/debian:bookworm-slim.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unmountUnder } from './containerd';

const CACHE = '/var/cache/contivk8s-test';
const BASE_TAR = path.join(CACHE, 'debian-bookworm-minbase.tar');
export const DEBIAN_BASE = 'localhost/debian:bookworm-slim';
const MIRROR = 'http://deb.debian.org/debian';

/** The minimal bookworm root filesystem as a tarball, made once by debootstrap and kept. */
export function debianBaseTarball(): string {
  if (fs.existsSync(BASE_TAR)) return BASE_TAR;
  fs.mkdirSync(CACHE, { recursive: true });
  const rootfs = fs.mkdtempSync(path.join(CACHE, 'rootfs-'));
  try {
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, MIRROR], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
    const tmp = `${BASE_TAR}.${process.pid}.tmp`;
    execFileSync('tar', ['-C', rootfs, '-cf', tmp, '.']);
    fs.renameSync(tmp, BASE_TAR);
  } finally {
    fs.rmSync(rootfs, { recursive: true, force: true });
  }
  return BASE_TAR;
}

export class PrivateBuildah {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  buildah(args: string[], opts: { timeout?: number } = {}): string {
    return execFileSync('buildah', ['--root', path.join(this.dir, 'storage'), '--runroot', path.join(this.dir, 'run'), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
      timeout: opts.timeout ?? 120_000,
    });
  }

  /** Imports the Debian base as DEBIAN_BASE. */
  importDebianBase(): void {
    const c = this.buildah(['from', 'scratch']).trim();
    this.buildah(['add', c, debianBaseTarball(), '/']);
    this.buildah(['commit', '-q', c, DEBIAN_BASE]);
    this.buildah(['rm', c]);
  }

  /** Runs `cmd` in a fresh container of `image`; its stdout. */
  run(image: string, cmd: string[]): string {
    const c = this.buildah(['from', '-q', image]).trim();
    try {
      return this.buildah(['run', c, '--', ...cmd]);
    } finally {
      this.buildah(['rm', c]);
    }
  }

  destroy(): void {
    try {
      this.buildah(['rm', '--all']);
      this.buildah(['rmi', '--all', '--force']);
    } catch {
      /* the unmount below still runs */
    }
    unmountUnder(this.dir);
    if (!process.env.CTV_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
