// The CNI plugin's main: exec'd by the runtime once per command with CNI_* in the environment and the network
// configuration on stdin. It reads and decodes them, runs the command (src/adapter/commands.ts: moving this
// process's main thread into the pod's namespace, whatever form the runtime named it in, and asking the
// netplugin to wire /proc/<own-pid>/ns/net, which every contiv netplugin understands), and answers. Built by
// `bun build --compile` into one executable (see Makefile); it never hangs: whatever it waits on, it answers
// one CNI result or error within the configured timeout plus a small margin.
import { type Deps, dispatch } from '../adapter/commands';
import { NetpluginClient } from '../api/client';
import { enqueueDel } from '../api/del-queue';
import { UnixHttpTransport } from '../api/unix-http';
import { DEFAULT_LOG_ROTATION, DEFAULT_TIMEOUT_MS, type NetConf, parseNetConf, peekConfig } from '../cni/config';
import { type CniEnv, parseEnv } from '../cni/env';
import { requireCommandInVersion, SUPPORTED_VERSIONS } from '../cni/version';
import { asCniError, CniError, ErrorCode } from '../errors';
import * as file from '../linux/fileio';
import { libc, pollIn } from '../linux/libc';
import { appendLogLine, type Level } from '../log/jsonl';
import { enterNetns, type NetnsHandle, nsIdOf, openNetns, sameNs } from '../netns/netns';
import { runtimeConvention } from '../netns/path';
import { VERSION } from '../version';

declare const Bun: { stdin: { stream(): ReadableStream<Uint8Array> } };

/** Failures are logged even without a logFile in the config (or with no config at all): here, unless overridden. */
const DEFAULT_ERROR_LOG = '/var/log/contiv/contivk8s.log';
/** Time left after the timeout for the error to be written before the deadline ends the process. */
const DEADLINE_MARGIN_MS = 250;
/** A network configuration is a few KiB; more is refused rather than read into memory. */
const MAX_STDIN_BYTES = 4 << 20;
const PEEK_STDIN_BYTES = 64 << 10;

const started = performance.now();

/**
 * Whether the ffi binding loaded: then stdin, stdout and the log go through libc (src/linux/fileio.ts, no
 * node:fs: under Bun that module alone costs each exec ~8 MiB and ~5 ms). Without it (a noexec $TMPDIR),
 * VERSION, GC and STATUS still answer; ADD, DEL and CHECK report why the binding failed.
 */
let haveLibc = false;
let env: CniEnv | undefined;
let conf: NetConf | undefined;
let replyVersion = '1.1.0';
let rawLogFile: string | undefined;
/**
 * What the run is waiting on, for the deadline's message, and the code a wait on it ends with: 11 for the
 * netplugin (try again later), 5 for anything on the node itself.
 */
let waitingOn: { what: string; code: number } = { what: 'the network configuration on stdin', code: ErrorCode.Io };
let answered = false;

function log(level: Level, message: string, meta: Record<string, unknown>): void {
  // every failure leaves a trace: in the config's logFile, else (config unusable or silent) the error log
  const file = conf?.logFile ?? (level === 'error' ? (rawLogFile ?? process.env.CONTIVK8S_ERROR_LOG ?? DEFAULT_ERROR_LOG) : undefined);
  if (file)
    appendLogLine(
      file,
      conf?.logLevel ?? 'info',
      level,
      message,
      { pid: process.pid, command: env?.command, containerId: env?.containerId, ...meta },
      conf?.logRotation ?? DEFAULT_LOG_ROTATION,
    );
}

const elapsedMs = () => Math.round((performance.now() - started) * 100) / 100;

/** Writes what this run answers (one JSON document, or nothing for a DEL/CHECK/GC/STATUS that succeeded), logs a failure, and exits. */
function answer(value: unknown, err?: CniError): void {
  if (answered) return;
  answered = true;
  if (err)
    log('error', `${env?.command ?? 'CNI'} failed: ${err.message}`, {
      netns: env?.netns,
      code: err.code,
      details: err.details,
      durationMs: elapsedMs(),
      outcome: 'error',
    });
  try {
    if (value !== undefined) writeStdout(`${JSON.stringify(value)}\n`);
  } catch {
    /* the runtime closed our stdout: the exit status still tells */
  }
  process.exit(err ? 1 : 0);
}

function writeStdout(text: string): void {
  if (haveLibc) file.writeAll(1, text);
  else (require('node:fs') as typeof import('node:fs')).writeSync(1, text);
}

const fail = (err: unknown) => {
  const e = asCniError(err);
  answer(e.toJSON(replyVersion), e);
};

let deadline: ReturnType<typeof setTimeout> | undefined;
/** Ends the run, whatever it is waiting on, `timeoutMs` (plus the margin) after it started. */
function armDeadline(timeoutMs: number, socket?: string): void {
  clearTimeout(deadline);
  deadline = setTimeout(
    () => {
      const msg = `contivk8s did not finish within ${timeoutMs} ms: still waiting on ${waitingOn.what}`;
      fail(new CniError(waitingOn.code, msg, socket ? `socket ${socket}` : ''));
    },
    Math.max(0, timeoutMs + DEADLINE_MARGIN_MS - (performance.now() - started)),
  );
}

/**
 * What arrives on stdin, refused past MAX_STDIN_BYTES; as soon as it parses far enough to name a timeoutMs,
 * that bounds the rest of the run (real configs are a few KiB: a huge one is not parsed again per chunk).
 */
function stdinCollector() {
  const chunks: Uint8Array[] = [];
  let size = 0;
  return {
    add(chunk: Uint8Array): void {
      size += chunk.length;
      if (size > MAX_STDIN_BYTES) throw new CniError(ErrorCode.Decode, `network configuration on stdin is larger than ${MAX_STDIN_BYTES} bytes`);
      chunks.push(chunk);
      if (size > PEEK_STDIN_BYTES) return;
      const { timeoutMs } = peekConfig(Buffer.concat(chunks).toString('utf8'));
      if (timeoutMs) armDeadline(timeoutMs);
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/** How long one poll(2) for stdin may hold the thread: the deadline's timer runs between polls. */
const STDIN_POLL_MS = 20;

/**
 * Reads the config. Bun's stdin stream starts two pool threads (~1.4 ms); instead stdin's pipe (what Go
 * runtimes give) is opened again non-blocking (/proc/self/fd/0) and read on this thread, waiting in poll(2)
 * while nothing is there yet, at most STDIN_POLL_MS at a time, so the deadline still ends a runtime that
 * never closes stdin. A socket (a runtime written in node) cannot be reopened: Bun's stream reads it.
 */
async function readStdin(): Promise<string> {
  const got = stdinCollector();
  let fd: number | undefined;
  try {
    if (haveLibc) fd = file.open('/proc/self/fd/0', file.O.RDONLY | file.O.NONBLOCK);
  } catch {
    /* not reopenable */
  }
  if (fd === undefined) {
    const reader = Bun.stdin.stream().getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) got.add(r.value);
    return got.text();
  }
  const buf = Buffer.allocUnsafe(PEEK_STDIN_BYTES);
  try {
    for (;;) {
      let n: number;
      try {
        n = file.read(fd, buf);
      } catch (err) {
        if ((err as file.ErrnoError).code !== 'EAGAIN') throw err;
        pollIn(fd, STDIN_POLL_MS);
        await new Promise(setImmediate);
        continue;
      }
      if (n === 0) return got.text();
      got.add(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    file.close(fd);
  }
}

/** Opens CNI_NETNS, refuses the plugin's own (host) namespace, and moves the main thread into it. */
function enterPodNetns(path: string): NetnsHandle {
  const ns = openNetns(path, 'the plugin');
  try {
    if (sameNs(ns, nsIdOf('/proc/self/ns/net'))) {
      throw new CniError(ErrorCode.InvalidEnv, `CNI_NETNS ${path} is the plugin's own network namespace`, 'refusing to wire the host namespace as a pod');
    }
    enterNetns(ns);
    return ns;
  } catch (err) {
    ns.close();
    throw err;
  }
}

/** What the commands reach: this process, its namespace, the netplugin over the unix socket, the DEL queue. */
const deps: Deps = {
  pid: process.pid,
  enterNetns: enterPodNetns,
  netplugin: (c) => new NetpluginClient(new UnixHttpTransport(c.socket, c.timeoutMs)),
  enqueueDel,
  log,
  waiting: (what, code) => {
    waitingOn = { what, code };
  },
  now: Date.now,
};

async function main(): Promise<void> {
  // an operator's `contivk8s --version`; runtimes exec the plugin without arguments
  if (process.argv.slice(2).includes('--version')) {
    writeStdout(`contivk8s ${VERSION}\n`);
    process.exit(0);
  }
  // until the config says otherwise, the default timeout bounds even a runtime that never closes stdin
  armDeadline(DEFAULT_TIMEOUT_MS);
  // the binding is loaded first: its dlopen (a few ms) overlaps the runtime's write of stdin; one that fails
  // to load is reported where it is needed (entering the namespace), with its hint
  try {
    libc();
    haveLibc = true;
  } catch {
    /* see haveLibc */
  }
  let stdin = '';
  try {
    stdin = await readStdin();
  } finally {
    ({ replyVersion, logFile: rawLogFile } = peekConfig(stdin));
  }
  env = parseEnv(process.env);
  if (env.command === 'VERSION') return answer({ cniVersion: replyVersion, supportedVersions: SUPPORTED_VERSIONS });
  conf = parseNetConf(stdin);
  armDeadline(conf.timeoutMs, conf.socket);
  requireCommandInVersion(env.command, conf.cniVersion);
  const outcome = await dispatch(env, conf, deps);
  log('info', `${env.command} ok`, {
    netns: env.netns,
    convention: env.netns ? runtimeConvention(env.netns) : undefined,
    rewrittenNetns: outcome.rewrittenNetns,
    durationMs: elapsedMs(),
    outcome: 'ok',
  });
  answer(outcome.stdout);
}

// a bug must still answer one CNI error, never a stack trace or a third exit status
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main().catch(fail);
