// The network configuration a runtime writes on stdin: decoded, checked (by the function generated from
// schemas.ts's zod schema) and given its defaults.
import { DEFAULT_SOCKET } from '../api/routes';
import type { AttachmentRef } from '../api/wire';
import { decodeJson } from '../decode';
import { CniError, ErrorCode } from '../errors';
import { checkNetConf } from '../generated/validators';
import { MAX_TIMEOUT_MS } from './limits';
import type { PrevResult } from './schemas';
import type { StaticSources } from './static';
import { type CniVersion, isSupportedVersion, LATEST_VERSION, requireSupportedVersion } from './version';

export const DEFAULT_TIMEOUT_MS = 30_000;

/** The adapter's log rotation unless configured: 100 MiB, five rotated files. */
export const DEFAULT_LOG_ROTATION = { maxBytes: 100 << 20, maxFiles: 5 };

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  socket: string;
  logFile?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** When the log file (or the error log) rotates, and how many rotated files are kept. */
  logRotation: { maxBytes: number; maxFiles: number };
  timeoutMs: number;
  prevResult?: PrevResult;
  validAttachments?: AttachmentRef[];
  /** hairpinMode: a frame may leave by the bridge port it came in on (a pod reaching itself through a DNAT). */
  hairpin: boolean;
  /** isDefaultGateway as configured; absent, the runtime's primary interface (eth0) gets the default routes. */
  isDefaultGateway?: boolean;
  /** Where static IPs and MACs may be asked for in the configuration (runtimeConfig ips/mac, args.cni). */
  staticSources: Omit<StaticSources, 'cniArgs'>;
}

/** What can be read from the configuration before it is validated, so that even its refusal is answered and logged. */
export interface ConfigPeek {
  /** The cniVersion to answer in: the requested one when we speak it, so an error has the caller's shape. */
  replyVersion: string;
  /** The configuration's logFile, when it names an absolute path. */
  logFile?: string;
  /** The configuration's timeoutMs, when it is a valid one. */
  timeoutMs?: number;
}

export function peekConfig(stdin: string): ConfigPeek {
  let raw: { cniVersion?: unknown; logFile?: unknown; timeoutMs?: unknown } | undefined;
  try {
    const parsed: unknown = JSON.parse(stdin);
    if (parsed !== null && typeof parsed === 'object') raw = parsed;
  } catch {
    /* undecodable: the latest version, no log file of its own */
  }
  const v = raw?.cniVersion;
  return {
    replyVersion: typeof v === 'string' && isSupportedVersion(v) ? v : LATEST_VERSION,
    ...(typeof raw?.logFile === 'string' && raw.logFile.startsWith('/') ? { logFile: raw.logFile } : {}),
    ...(Number.isInteger(raw?.timeoutMs) && (raw?.timeoutMs as number) > 0 && (raw?.timeoutMs as number) <= MAX_TIMEOUT_MS
      ? { timeoutMs: raw?.timeoutMs as number }
      : {}),
  };
}

/** GC's list: null is the empty list (nothing is valid); absent stays absent, and GC refuses to run without it. */
function validAttachments(valid: AttachmentRef[] | null | undefined, spec110: AttachmentRef[] | null | undefined): AttachmentRef[] | undefined {
  const list = valid !== undefined ? valid : spec110;
  return list === undefined ? undefined : (list ?? []);
}

/** The `cni` namespace of `args` (CONVENTIONS.md), when it is an object. */
function cniArgsOf(args: Record<string, unknown> | undefined): StaticSources['args'] {
  const cni = args?.cni;
  return cni !== null && typeof cni === 'object' && !Array.isArray(cni) ? (cni as StaticSources['args']) : undefined;
}

/** Decodes and validates the network configuration a runtime writes on stdin. */
export function parseNetConf(stdin: string): NetConf {
  const c = decodeJson(stdin, checkNetConf, {
    notJson: { code: ErrorCode.Decode, msg: 'failed to decode network configuration from stdin' },
    invalid: { code: ErrorCode.InvalidConfig, msg: 'invalid network configuration' },
  });
  const cniVersion = requireSupportedVersion(c.cniVersion);
  const socket = c.socket ?? DEFAULT_SOCKET;
  // After setns the adapter's new sockets belong to the pod's namespace; a filesystem unix socket is
  // found by path (mount namespace), but an abstract one ("@name") would be looked up in the pod's netns.
  if (!socket.startsWith('/')) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `socket ${JSON.stringify(socket)} must be an absolute filesystem path`,
      'abstract or relative unix sockets cannot be reached from inside the pod network namespace',
    );
  }
  return {
    cniVersion,
    name: c.name ?? '',
    socket,
    logFile: c.logFile,
    logLevel: c.logLevel ?? 'info',
    logRotation: {
      maxBytes: c.logFileMaxSize === undefined ? DEFAULT_LOG_ROTATION.maxBytes : Math.max(1, Math.round(c.logFileMaxSize * 2 ** 20)),
      maxFiles: c.logFileMaxFiles ?? DEFAULT_LOG_ROTATION.maxFiles,
    },
    timeoutMs: c.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    prevResult: c.prevResult,
    validAttachments: validAttachments(c['cni.dev/valid-attachments'], c['cni.dev/attachments']),
    hairpin: c.hairpinMode ?? true,
    isDefaultGateway: c.isDefaultGateway,
    staticSources: { runtimeConfig: c.runtimeConfig, args: cniArgsOf(c.args) },
  };
}
