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
    options?: ErrorOptions,
  ) {
    super(msg, options);
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** An error raised below the edges that knows the CNI code a request meeting it is answered with (the store's). */
export interface CodedError extends Error {
  cniCode: number;
  /** What to do about it: the answer's details. */
  hint?: string;
}

/**
 * A failure below the edges (the kernel's, the node's) that knows the CNI code it is answered with and what
 * to do about it, with the error underneath as its cause. asCniError turns it into the answer at the edge.
 */
export class CodedFailure extends Error implements CodedError {
  constructor(
    readonly cniCode: number,
    message: string,
    readonly hint?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CodedFailure';
  }
}

/** The messages of an error's causes, outermost first ("" when it has none): what a log line needs beside the message. */
export function causes(err: unknown): string {
  const out: string[] = [];
  for (let c = (err as Error)?.cause; c !== undefined && out.length < 5; c = (c as Error)?.cause) out.push(c instanceof Error ? c.message : String(c));
  return out.join(' <- ');
}

const isCoded = (err: unknown): err is CodedError => err instanceof Error && typeof (err as Partial<CodedError>).cniCode === 'number';

/**
 * Any thrown value as the CniError a runtime is answered with, the original kept as its cause. A CniError is
 * itself; a coded error keeps its code and hint; anything else (a bug, an unexpected failure) is an I/O error
 * (code 5), and `isUnexpected` tells the log to keep its stack.
 */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (isCoded(err)) return new CniError(err.cniCode, err.message, err.hint ?? '', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new CniError(ErrorCode.Io, message, '', { cause: err });
}

/** True for a failure no code path anticipated: the log keeps its stack. */
export const isUnexpected = (err: unknown): boolean => !(err instanceof CniError) && !isCoded(err);

/** Plugin-specific codes (the spec reserves 100+ for plugins). */
export const PluginErrorCode = {
  /** CHECK found the attachment different from what the runtime expects. */
  CheckFailed: 100,
  /** ADD for a (container id, ifname) that is already attached: the spec's "interface already exists". */
  AlreadyAttached: 101,
  /** The pod subnet has no free address left. */
  PoolExhausted: 102,
  /** A requested static IP or MAC is held by another attachment. */
  AddressInUse: 103,
} as const;
