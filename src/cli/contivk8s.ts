// The CNI plugin: exec'd by the runtime once per command with CNI_* in the environment and the network
// configuration on stdin. It moves its own main thread into the pod's namespace, whatever form the runtime
// named it in, and asks the netplugin to wire /proc/<own-pid>/ns/net, which every contiv netplugin understands.
// Built by `bun build --compile` into one executable (see Makefile); it never hangs: whatever it waits on, it
// answers one CNI result or error within the configured timeout plus a small margin.
import { NetpluginClient, NetpluginUnreachable } from '../api/client';
import { enqueueDel } from '../api/del-queue';
import { UnixHttpTransport } from '../api/unix-http';
import type { PodAttr } from '../api/wire';
import { DEFAULT_LOG_ROTATION, DEFAULT_TIMEOUT_MS, type NetConf, parseNetConf, peekConfig } from '../cni/config';
import { type CniEnv, parseEnv } from '../cni/env';
import { prevResultAddresses, renderResult } from '../cni/result';
import { staticRequest } from '../cni/static';
import { requireCommandInVersion, SUPPORTED_VERSIONS } from '../cni/version';
import { asCniError, CniError, ErrorCode, PluginErrorCode } from '../errors';
import * as file from '../linux/fileio';
import { libc, pollIn } from '../linux/libc';
import { appendLogLine, type Level } from '../log/jsonl';
import { enterNetns, type NetnsHandle, nsIdOf, openNetns, sameNs } from '../netns/netns';
import { procNetnsPath, runtimeConvention } from '../netns/path';
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
  waitingOn = { what: `the network namespace ${path}`, code: ErrorCode.Io };
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

function podAttr(e: CniEnv, ns?: NetnsHandle): PodAttr {
  return {
    K8S_POD_NAME: e.args.K8S_POD_NAME,
    K8S_POD_NAMESPACE: e.args.K8S_POD_NAMESPACE,
    K8S_POD_INFRA_CONTAINER_ID: e.args.K8S_POD_INFRA_CONTAINER_ID ?? e.containerId,
    K8S_POD_UID: e.args.K8S_POD_UID,
    CNI_CONTAINERID: e.containerId,
    CNI_IFNAME: e.ifname,
    ...(ns ? { CNI_NETNS: procNetnsPath(process.pid), CONTIV_NETNS_DEV: ns.dev, CONTIV_NETNS_INODE: ns.ino, CONTIV_ORIG_NETNS: e.netns } : {}),
  };
}

function netplugin(c: NetConf): NetpluginClient {
  waitingOn = { what: `the netplugin on ${c.socket}`, code: ErrorCode.TryAgainLater };
  return new NetpluginClient(new UnixHttpTransport(c.socket, c.timeoutMs));
}

interface Outcome {
  stdout?: unknown;
  rewrittenNetns?: string;
}

async function cmdAdd(e: CniEnv, c: NetConf): Promise<Outcome> {
  // static requests are checked before anything on the node is touched
  const wanted = staticRequest({ ...c.staticSources, cniArgs: e.args });
  const ns = enterPodNetns(e.netns);
  // We stay in the namespace (and keep the fd) until the netplugin has answered.
  const rsp = await netplugin(c).addPod({
    ...podAttr(e, ns),
    CONTIV_DEFAULT_ROUTE: c.isDefaultGateway ?? e.ifname === 'eth0',
    CONTIV_HAIRPIN: c.hairpin,
    ...(wanted.ips.length ? { CONTIV_IPS: wanted.ips } : {}),
    ...(wanted.mac ? { CONTIV_MAC: wanted.mac } : {}),
  });
  if (!rsp.ipaddress) throw new CniError(ErrorCode.Io, 'netplugin answered AddPod without an IP address');
  // a netplugin that does not know the static request (contiv's own) must not answer something else
  const got = [rsp.ipaddress, rsp.ipv6address].filter(Boolean).map((a) => (a as string).split('/')[0]);
  const missed = wanted.ips.map((ip) => ip.split('/')[0]).filter((ip) => !got.includes(ip));
  if (missed.length || (wanted.mac && rsp.mac?.toLowerCase() !== wanted.mac)) {
    throw new CniError(ErrorCode.Io, `netplugin answered AddPod without the requested ${missed.length ? `IP ${missed.join(', ')}` : `MAC ${wanted.mac}`}`);
  }
  const result = renderResult(c.cniVersion, {
    ...(rsp.hostveth ? { hostInterface: { name: rsp.hostveth } } : {}),
    podInterface: { name: e.ifname, mac: rsp.mac, sandbox: e.netns },
    ipv4: { address: rsp.ipaddress, gateway: rsp.gateway },
    ...(rsp.ipv6address ? { ipv6: { address: rsp.ipv6address, gateway: rsp.ipv6gateway } } : {}),
    defaultRoute: rsp.defaultroute !== false, // contiv's netplugin always routes
  });
  return { stdout: result, rewrittenNetns: procNetnsPath(process.pid) };
}

async function cmdDel(e: CniEnv, c: NetConf): Promise<Outcome> {
  // DEL must free the IP and the host veth even when the namespace is gone or unusable (kubernetes #57465):
  // an empty, vanished or unusable CNI_NETNS is sent as no namespace at all.
  let ns: NetnsHandle | undefined;
  if (e.netns) {
    try {
      ns = enterPodNetns(e.netns);
    } catch (err) {
      log('warn', 'DEL without namespace', { netns: e.netns, reason: asCniError(err).message });
    }
  }
  try {
    await netplugin(c).delPod(podAttr(e, ns));
  } catch (err) {
    if (!(err instanceof NetpluginUnreachable)) throw err;
    // a netplugin that is down or hung must not block a pod's teardown: the DEL is queued durably beside its
    // socket and applied by the netplugin before it serves another ADD (src/api/del-queue.ts)
    const queued = enqueueDel(c.socket, {
      containerId: e.containerId,
      ifname: e.ifname,
      netns: e.netns,
      podName: e.args.K8S_POD_NAME,
      podNamespace: e.args.K8S_POD_NAMESPACE,
      queuedAt: Date.now(),
      reason: err.message,
    });
    log('warn', queued ? 'DEL queued: the netplugin could not be asked' : 'DEL answered: no netplugin ever served this socket', {
      reason: err.message,
      ...(queued ? { queued } : {}),
    });
  }
  return { rewrittenNetns: ns ? procNetnsPath(process.pid) : '' };
}

async function cmdCheck(e: CniEnv, c: NetConf): Promise<Outcome> {
  if (!c.prevResult) throw new CniError(ErrorCode.InvalidConfig, 'CHECK needs prevResult in the network configuration');
  const ns = enterPodNetns(e.netns);
  const rsp = await netplugin(c).checkPod(podAttr(e, ns));
  const observed = new Set(rsp.observed ?? []);
  const expected = prevResultAddresses(c.prevResult, e.ifname);
  const missing = expected.filter((a) => !observed.has(a));
  if (missing.length) {
    throw new CniError(PluginErrorCode.CheckFailed, `${e.ifname} in ${e.netns} lacks ${missing.join(', ')}`, `found: ${[...observed].join(', ') || 'none'}`);
  }
  if (rsp.ipaddress && !expected.includes(rsp.ipaddress)) {
    throw new CniError(PluginErrorCode.CheckFailed, `prevResult does not carry the allocated address ${rsp.ipaddress}`);
  }
  return { rewrittenNetns: procNetnsPath(process.pid) };
}

async function cmdGc(c: NetConf): Promise<Outcome> {
  if (!c.validAttachments) {
    throw new CniError(ErrorCode.InvalidConfig, 'GC needs cni.dev/valid-attachments', 'without it every attachment would be freed');
  }
  await netplugin(c).gc({ validAttachments: c.validAttachments });
  return {};
}

async function cmdStatus(c: NetConf): Promise<Outcome> {
  if (!(await netplugin(c).healthy())) {
    throw new CniError(ErrorCode.PluginNotAvailable, `netplugin is not available on ${c.socket}`);
  }
  return {};
}

function dispatch(e: CniEnv, c: NetConf): Promise<Outcome> {
  switch (e.command) {
    case 'ADD':
      return cmdAdd(e, c);
    case 'DEL':
      return cmdDel(e, c);
    case 'CHECK':
      return cmdCheck(e, c);
    case 'GC':
      return cmdGc(c);
    case 'STATUS':
      return cmdStatus(c);
    case 'VERSION':
      throw new Error('unreachable: VERSION is answered before the config is read');
  }
}

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
  const outcome = await dispatch(env, conf);
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
