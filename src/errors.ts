import type * as z from 'zod/mini';

// CNI error codes, as the spec (1.1.0, "Error") numbers them.
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  ContainerUnknown: 3,
  InvalidEnv: 4,
  Io: 5,
  Decode: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
} as const;

/** An error the plugin reports to the runtime as the spec's error object. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Any thrown value as a CniError; unexpected ones become I/O errors (code 5) with their message. */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CniError(ErrorCode.Io, message);
}

/** Plugin-specific codes (the spec reserves 100+ for plugins). */
export const PluginErrorCode = {
  /** CHECK found the attachment different from what the runtime expects. */
  CheckFailed: 100,
  /** ADD for a (container id, ifname) that is already attached: the spec's "interface already exists". */
  AlreadyAttached: 101,
  /** The pod subnet has no free address left. */
  PoolExhausted: 102,
} as const;

/** Flattens a zod error into one line that names each offending field. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
