import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN } from './sys';

export interface AdapterRun {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, any>;
  durationMs: number;
  /** True when the safety timer had to kill it: it hung. */
  killed: boolean;
}

export interface RunOptions {
  /**
   * What the plugin's stdin is: a pipe (default), as Go runtimes (containerd, CRI-O, libcni) hand it, or the
   * socketpair node's spawn makes, as a runtime written in node would.
   */
  stdin?: 'pipe' | 'socketpair';
  /** Leave stdin open after writing the config, as a stuck runtime would. */
  keepStdinOpen?: boolean;
  /** Write the config in two halves, the second this long after the first, as a slow runtime might. */
  secondHalfAfterMs?: number;
  /** Kill it after this long (default 60 s), so that a hang fails a test instead of stalling the suite. */
  killAfterMs?: number;
}

/**
 * FIFOs for plugins' stdin, reused: node cannot make an anonymous pipe (its 'pipe' stdio is a socketpair), and
 * a FIFO opened at both ends is one, the same to the reader (S_ISFIFO, reopenable through /proc/self/fd/0).
 */
const idleFifos: string[] = [];
let fifoDir: string | undefined;
let fifoSeq = 0;

function takeFifo(): string {
  const reused = idleFifos.pop();
  if (reused) return reused;
  if (!fifoDir) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctv-stdin-'));
    // the FIFOs go with the process that made them
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    fifoDir = dir;
  }
  const fifo = path.join(fifoDir, String(fifoSeq++));
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  return fifo;
}

/** What an empty pipe takes without blocking the writer (Linux's default pipe size). */
const PIPE_CAPACITY = 64 << 10;

/** The child's end (its stdin) and ours, of a pipe made from a FIFO. */
function openPipe(): { childEnd: number; ourEnd: number; release(): void } {
  const fifo = takeFifo();
  // the reading end first, non-blocking (node has no fcntl to clear it after), so that the writing end opens at
  // once; contivk8s reopens its stdin with its own flags, and Go's os.Stdin polls a non-blocking fd
  const childEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const ourEnd = fs.openSync(fifo, fs.constants.O_WRONLY);
  return { childEnd, ourEnd, release: () => idleFifos.push(fifo) };
}

export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Execs bin/contivk8s as a runtime does: CNI_* env only (plus PATH), config on stdin. */
export function runAdapter(
  env: Record<string, string>,
  stdin: string | object,
  plugin = path.join(BIN, 'contivk8s'),
  opts: RunOptions = {},
): Promise<AdapterRun> {
  return new Promise((resolve, reject) => {
    const pipe = opts.stdin === 'socketpair' ? undefined : openPipe();
    const started = performance.now();
    const child = spawn(plugin, [], {
      cwd: '/',
      env: { PATH: CLEAN_PATH, ...env },
      stdio: [pipe ? pipe.childEnd : 'pipe', 'pipe', 'pipe'],
    });
    if (pipe) fs.closeSync(pipe.childEnd);
    const bytes = Buffer.from(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
    const writer = pipe ? feedPipe(pipe, bytes, opts) : feedStream(child.stdin!, bytes, opts);
    let killed = false;
    const safety = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, opts.killAfterMs ?? 60_000);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(safety);
      writer.finish();
      let json: Record<string, any> = {};
      try {
        json = stdout.trim() ? JSON.parse(stdout) : {};
      } catch {
        json = { unparsable: stdout };
      }
      resolve({ status: status ?? -1, stdout, stderr, json, durationMs: performance.now() - started, killed });
    });
  });
}

/** Writes the config as opts say (whole, in two halves, left open); finish() drops what is left once the plugin is gone. */
function feedStream(stream: NodeJS.WritableStream, bytes: Buffer, opts: RunOptions): { finish(): void } {
  // a plugin that exits before reading all of stdin is not an error here
  stream.on('error', () => undefined);
  const half = opts.secondHalfAfterMs === undefined ? bytes.length : bytes.length >> 1;
  stream.write(bytes.subarray(0, half));
  const rest = () => (opts.keepStdinOpen ? stream.write(bytes.subarray(half)) : stream.end(bytes.subarray(half)));
  let timer: NodeJS.Timeout | undefined;
  if (opts.secondHalfAfterMs === undefined) rest();
  else timer = setTimeout(rest, opts.secondHalfAfterMs);
  return {
    finish: () => {
      clearTimeout(timer);
      (stream as fs.WriteStream).destroy();
    },
  };
}

/**
 * As a runtime does, the whole config is in the pipe and the pipe closed as the plugin starts: an empty pipe
 * takes 64 KiB without blocking, so a config that fits is written and closed here, synchronously (a stream
 * would wait for this loop's next turn, after every other spawn of a concurrent batch). The rest, a second
 * half, or a pipe left open goes through a stream on our end.
 */
function feedPipe(pipe: ReturnType<typeof openPipe>, bytes: Buffer, opts: RunOptions): { finish(): void } {
  const whole = opts.secondHalfAfterMs === undefined && !opts.keepStdinOpen && bytes.length <= PIPE_CAPACITY;
  if (whole) {
    fs.writeSync(pipe.ourEnd, bytes);
    fs.closeSync(pipe.ourEnd);
    return { finish: pipe.release };
  }
  const stream = fs.createWriteStream('', { fd: pipe.ourEnd });
  const fed = feedStream(stream, bytes, opts);
  return {
    // our end is closed only after the plugin is gone, and the FIFO reused only after that
    finish: () => {
      if (stream.closed) pipe.release();
      else stream.once('close', pipe.release);
      fed.finish();
    },
  };
}

export function cniEnv(command: string, containerId: string, netns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME=${containerId};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    ...extra,
  };
}
