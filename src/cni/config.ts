import * as z from 'zod/mini';
import { CniError, ErrorCode } from './errors';
import { describeIssues } from './schema';
import { type CniVersion, LATEST_VERSION, isSupportedVersion, requireSupportedVersion } from './version';

export const DEFAULT_SOCKET = '/run/contiv/contiv-cni.sock';
export const DEFAULT_TIMEOUT_MS = 30_000;

const ipConfigSchema = z.looseObject({
  address: z.string(),
  gateway: z.optional(z.string()),
  interface: z.optional(z.number()),
});
const prevResultSchema = z.looseObject({
  interfaces: z.optional(z.array(z.looseObject({ name: z.string(), mac: z.optional(z.string()), sandbox: z.optional(z.string()) }))),
  ips: z.optional(z.array(ipConfigSchema)),
});
const attachmentSchema = z.object({ containerID: z.string(), ifname: z.string() });

const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.optional(z.string()),
  type: z.optional(z.string()),
  socket: z.optional(z.string().check(z.minLength(1))),
  logFile: z.optional(z.string()),
  logLevel: z.optional(z.enum(['error', 'warn', 'info', 'debug'])),
  timeoutMs: z.optional(z.number().check(z.int(), z.positive())),
  args: z.optional(z.record(z.string(), z.unknown())),
  runtimeConfig: z.optional(z.record(z.string(), z.unknown())),
  prevResult: z.optional(prevResultSchema),
  'cni.dev/valid-attachments': z.optional(z.array(attachmentSchema)),
  'cni.dev/attachments': z.optional(z.array(attachmentSchema)),
});
export type PrevResult = z.infer<typeof prevResultSchema>;
export type Attachment = z.infer<typeof attachmentSchema>;

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  socket: string;
  logFile?: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  timeoutMs: number;
  prevResult?: PrevResult;
  validAttachments?: Attachment[];
}

function decodeJson(stdin: string): unknown {
  try {
    return JSON.parse(stdin);
  } catch (err) {
    throw new CniError(ErrorCode.Decode, 'failed to decode network configuration from stdin', (err as Error).message);
  }
}

/**
 * The cniVersion to answer in even when the config is unusable: the requested one when we speak it,
 * so that an error for a malformed config still has the caller's shape.
 */
export function replyVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && isSupportedVersion(v)) return v;
  } catch {
    /* fall through to the latest */
  }
  return LATEST_VERSION;
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
    throw new CniError(ErrorCode.InvalidConfig, `socket ${JSON.stringify(socket)} must be an absolute filesystem path`, 'abstract or relative unix sockets cannot be reached from inside the pod network namespace');
  }
  return {
    cniVersion,
    name: c.name ?? '',
    socket,
    logFile: c.logFile,
    logLevel: c.logLevel ?? 'info',
    timeoutMs: c.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    prevResult: c.prevResult,
    validAttachments: c['cni.dev/valid-attachments'] ?? c['cni.dev/attachments'],
  };
}
