import * as z from 'zod/mini';
import { type AttachmentRef, attachmentRefSchema, DEFAULT_SOCKET } from '../api/wire';
import { CniError, describeIssues, ErrorCode } from '../errors';
import { type CniVersion, isSupportedVersion, LATEST_VERSION, requireSupportedVersion } from './version';

export const DEFAULT_TIMEOUT_MS = 30_000;
/** A runtime waits minutes at most; a longer timeout would also overflow a timer. */
export const MAX_TIMEOUT_MS = 600_000;

const ipConfigSchema = z.looseObject({
  address: z.string(),
  gateway: z.optional(z.string()),
  interface: z.optional(z.number()),
});
const prevResultSchema = z.looseObject({
  interfaces: z.optional(z.array(z.looseObject({ name: z.string(), mac: z.optional(z.string()), sandbox: z.optional(z.string()) }))),
  ips: z.optional(z.array(ipConfigSchema)),
});

const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.optional(z.string()),
  type: z.optional(z.string()),
  socket: z.optional(z.string().check(z.minLength(1))),
  logFile: z.optional(z.string().check(z.refine((f) => f.startsWith('/'), 'must be an absolute path'))),
  logLevel: z.optional(z.enum(['error', 'warn', 'info', 'debug'])),
  timeoutMs: z.optional(z.number().check(z.int(), z.positive(), z.lte(MAX_TIMEOUT_MS))),
  args: z.optional(z.record(z.string(), z.unknown())),
  runtimeConfig: z.optional(z.record(z.string(), z.unknown())),
  prevResult: z.optional(prevResultSchema),
  // libcni (v1.2+: containerd, CRI-O's ocicni) sends null, not [], when no attachment is valid
  'cni.dev/valid-attachments': z.optional(z.nullable(z.array(attachmentRefSchema()))),
  'cni.dev/attachments': z.optional(z.nullable(z.array(attachmentRefSchema()))),
});
export type PrevResult = z.infer<typeof prevResultSchema>;

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  socket: string;
  logFile?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  timeoutMs: number;
  prevResult?: PrevResult;
  validAttachments?: AttachmentRef[];
}

function decodeJson(stdin: string): unknown {
  try {
    return JSON.parse(stdin);
  } catch (err) {
    throw new CniError(ErrorCode.Decode, 'failed to decode network configuration from stdin', (err as Error).message);
  }
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

/** Decodes and validates the network configuration a runtime writes on stdin. */
export function parseNetConf(stdin: string): NetConf {
  const parsed = netConfSchema.safeParse(decodeJson(stdin));
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration', describeIssues(parsed.error));
  }
  const c = parsed.data;
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
    timeoutMs: c.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    prevResult: c.prevResult,
    validAttachments: validAttachments(c['cni.dev/valid-attachments'], c['cni.dev/attachments']),
  };
}
