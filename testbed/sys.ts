// Real kernel objects for tests: namespaces, processes in new namespaces, link listings. Everything made
// here has a unique name and a cleanup that tolerates it being gone already.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ipJson, links } from '../src/linux/iproute';
import { readlink } from '../src/netns/inventory';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin');
export const FIXTURES = path.join(ROOT, 'fixtures');

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function uniq(prefix: string, bytes = 3): string {
  return `${prefix}${randomBytes(bytes).toString('hex')}`;
}

export interface TestNetns {
  path: string;
  remove(): void;
}

/** `ip netns add` under /var/run/netns (the containerd / CRI-O convention). */
export function namedNetns(name = uniq('ctvtest-')): TestNetns {
  sh('ip', ['netns', 'add', name]);
  return { path: `/var/run/netns/${name}`, remove: () => void tryRun('ip', ['netns', 'del', name]) };
}

/** A process started in a new network namespace (`unshare --net`): the /proc/<pid>/ns/net convention. */
export async function processNetns(): Promise<TestNetns & { pid: number; child: ChildProcess }> {
  const child = spawn('unshare', ['--net', '--', 'sleep', '600'], { stdio: 'ignore' });
  const pid = child.pid!;
  // unshare execs sleep in the same PID once the namespace exists
  for (let i = 0; i < 200; i++) {
    if (readlink(`/proc/${pid}/ns/net`) !== readlink('/proc/self/ns/net') && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { pid, child, path: `/proc/${pid}/ns/net`, remove: () => void child.kill('SIGKILL') };
}

export function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return sh(cmd, args);
  } catch {
    return undefined;
  }
}

/** Runs a command inside the namespace at `nsPath`. */
export function inNetns(nsPath: string, cmd: string, args: string[]): string {
  return sh('nsenter', [`--net=${nsPath}`, '--', cmd, ...args]);
}

export { links };

export function hostLinkNames(): string[] {
  return links().map((l) => l.ifname);
}

export function routes(nsPath: string, family: '-4' | '-6' = '-4'): { dst: string; gateway?: string; dev: string }[] {
  return ipJson([family, 'route', 'show'], nsPath);
}

export function ping(nsPath: string, ip: string): boolean {
  try {
    inNetns(nsPath, 'ping', ['-c', '1', '-W', '2', ip]);
    return true;
  } catch {
    return false;
  }
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Collects a child's stdout and stderr and resolves with them and its exit status. */
export function finished(child: ChildProcess): Promise<{ status: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The JSON lines the adapter appended to its log file. */
export function adapterLog(file: string): Record<string, any>[] {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
}
