// How the netplugin and contivctl reach etcd: over TLS with a client certificate (--etcd-ca, --etcd-cert,
// --etcd-key, as Calico and Cilium take them); plain HTTP only when asked for with --etcd-insecure. Every
// call is bounded: an etcd that does not answer in time is unreachable (code 11 for a CNI request), never a
// hang, whatever the reason (down, no quorum, a TLS handshake that fails).
import * as fs from 'node:fs';
import { type ComparatorBuilder, Etcd3 } from 'etcd3';
import { CniError, ErrorCode } from '../errors';
import { allowIpServerNames } from './grpc-ip-sni';

/** An etcd call that takes longer is treated as etcd being unreachable. */
const ETCD_TIMEOUT_MS = 3000;
/**
 * One attempt on one member: a call to a member that just died waited ~7 s here before the client gave up
 * on it. Past this deadline the client retries on the next member (the deadline error is recoverable), so a
 * dead member of three costs a call ~1 s, inside ETCD_TIMEOUT_MS.
 */
const ATTEMPT_MS = 1000;
const perAttemptDeadline = (ctx: { isStream: boolean }) => (ctx.isStream ? {} : { deadline: Date.now() + ATTEMPT_MS });

export interface EtcdOptions {
  endpoints: string[];
  /** PEM files: the CA that signed etcd's certificate, and this client's certificate and key. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Allow http:// endpoints (no TLS). */
  insecure?: boolean;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: ${(err as Error).message}`);
  }
}

/** Checks the options against the rules above and opens a client; no call is made yet. */
export function connectEtcd(o: EtcdOptions): Etcd3 {
  if (!o.endpoints.length) throw new Error('--etcd-endpoints is empty');
  const schemes = new Set(o.endpoints.map((e) => /^(https?):\/\//.exec(e)?.[1]));
  if (schemes.has(undefined)) throw new Error(`--etcd-endpoints ${o.endpoints.join(',')}: every endpoint needs http:// or https://`);
  if (schemes.size > 1) throw new Error('--etcd-endpoints mixes http:// and https://');
  if (schemes.has('http')) {
    if (!o.insecure)
      throw new Error(
        'etcd over plain HTTP is refused: use https:// endpoints with --etcd-ca, --etcd-cert and --etcd-key, or pass --etcd-insecure to allow it',
      );
    return new Etcd3({ hosts: o.endpoints, dialTimeout: ETCD_TIMEOUT_MS, defaultCallOptions: perAttemptDeadline });
  }
  if (!o.ca) throw new Error("https:// etcd endpoints need --etcd-ca (the CA that signed etcd's certificate)");
  if (!o.cert !== !o.key) throw new Error('--etcd-cert and --etcd-key go together');
  const credentials = {
    rootCertificate: readPem('--etcd-ca', o.ca),
    ...(o.cert && o.key ? { certChain: readPem('--etcd-cert', o.cert), privateKey: readPem('--etcd-key', o.key) } : {}),
  };
  allowIpServerNames(o.endpoints);
  return new Etcd3({ hosts: o.endpoints, dialTimeout: ETCD_TIMEOUT_MS, defaultCallOptions: perAttemptDeadline, credentials });
}

/** A failed etcd call: what happened (without gRPC's noise), and what to do first. */
export class EtcdError extends Error {
  constructor(
    message: string,
    readonly hint: string | undefined,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'EtcdError';
  }
}

/**
 * gRPC's text for a failed call: its status prefix ("14 UNAVAILABLE: "), and advice that sends operators the
 * wrong way (Node's "try running Node.js with --use-system-ca": the trust here is --etcd-ca), are cut.
 */
const withoutGrpcNoise = (m: string) =>
  m
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/[^.;]*(try running Node\.js with --use-system-ca|Resolution note)[\s\S]*$/i, '')
    .replace(/[\s.;,]+$/, '');

/** What a failed etcd call means, leading with the fix when it is known. */
function describeFailure(what: string, err: Error, endpoints: string[]): EtcdError {
  const m = err.message;
  const hint = /bad certificate|certificate required|alert number 4[26]/.test(m)
    ? "etcd refused this client's certificate (check --etcd-cert and --etcd-key)"
    : /verify|self[- ]signed|certificate|issuer/i.test(m)
      ? "etcd's certificate is not trusted (check --etcd-ca) or does not name this endpoint"
      : /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/.test(m)
        ? `check that etcd runs, has quorum and is reachable at ${endpoints.join(', ')} (--etcd-endpoints)`
        : undefined;
  return new EtcdError(`${what}: ${withoutGrpcNoise(m)}`, hint, err);
}

/** One comparison of a transaction, as etcd3's `if` and `and` take it. */
export type Comparison = [key: string, target: 'Create' | 'Value' | 'Version', cmp: '==', value: string | number];

/** One client and every call made through it: each bounded in time, and counted when asked (for /metrics). */
export class EtcdSession {
  constructor(
    readonly client: Etcd3,
    readonly endpoints: string[],
    private readonly onCall?: () => void,
  ) {}

  /** A transaction whose operations apply only if every comparison holds. */
  ifAll([first, ...rest]: Comparison[]): ComparatorBuilder {
    const txn = this.client.if(...first);
    for (const c of rest) txn.and(...c);
    return txn;
  }

  call<T>(what: string, request: Promise<T>): Promise<T> {
    this.onCall?.();
    let timer: NodeJS.Timeout;
    return Promise.race([
      request.catch((err: Error) => Promise.reject(describeFailure(what, err, this.endpoints))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new EtcdError(
                `${what}: etcd (${this.endpoints.join(', ')}) did not answer within ${ETCD_TIMEOUT_MS} ms`,
                `check that etcd runs, has quorum and is reachable at ${this.endpoints.join(', ')} (--etcd-endpoints)`,
              ),
            ),
          ETCD_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.client.close();
  }
}

export function openSession(o: EtcdOptions, onCall?: () => void): EtcdSession {
  return new EtcdSession(connectEtcd(o), o.endpoints, onCall);
}

/** The CNI error for a request that needed etcd and could not have it. */
export const etcdUnreachable = (err: unknown) =>
  new CniError(
    ErrorCode.TryAgainLater,
    `etcd is unreachable: ${(err as Error).message}`,
    'the cluster store answers again once etcd is back (and has quorum); nothing was allocated',
  );
