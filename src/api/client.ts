// The netplugin's client, over whichever HTTP transport the caller's runtime does best: the exec'd adapter
// (Bun) uses fetch (fetch-transport.ts), the Node side axios (axios-transport.ts). Every answer is decoded
// by the zod contract in wire.ts, so both ends speak one schema.
import * as z from 'zod/mini';
import { CniError, describeIssues, ErrorCode } from '../errors';
import {
  type Endpoint,
  endpointSchema,
  type GcRequest,
  type Health,
  healthSchema,
  type PodAttr,
  Routes,
  type RspAddPod,
  type RspCheckPod,
  type RspDelPod,
  type RspFailure,
  type RspGc,
  rspAddPodSchema,
  rspCheckPodSchema,
  rspDelPodSchema,
  rspGcSchema,
} from './wire';

export interface Exchange {
  method: 'GET' | 'POST';
  path: string;
  /** JSON text; sent with Content-Type: application/json, which contiv's router matches on. */
  body?: string;
}

export interface Answer {
  status: number;
  body: string;
}

/** One HTTP/1.1 exchange over the netplugin's unix socket; failures to reach it are thrown as code 11. */
export interface Transport {
  readonly socket: string;
  readonly timeoutMs: number;
  exchange(e: Exchange): Promise<Answer>;
}

/** What a transport's failure means to a runtime: the netplugin is absent, slow or unreachable (code 11). */
export function unreachable(socket: string, timeoutMs: number, err: { code?: string; name?: string; message?: string }): CniError {
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') {
    return new CniError(
      ErrorCode.TryAgainLater,
      `netplugin did not answer within ${timeoutMs} ms on ${socket}`,
      'is the netplugin daemon stopped or overloaded?',
    );
  }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'FailedToOpenSocket') {
    return new CniError(ErrorCode.TryAgainLater, `netplugin is not listening on ${socket}`, `${err.code}: is the netplugin daemon running?`);
  }
  return new CniError(ErrorCode.TryAgainLater, `cannot reach netplugin on ${socket}: ${err.message ?? err.code ?? 'unknown error'}`);
}

const KNOWN_CODES = new Set<number>(Object.values(ErrorCode));
/** The spec's codes and plugin codes (100+) pass through; anything else from a netplugin is an I/O error. */
const isCniCode = (n: number | undefined): n is number => n !== undefined && (KNOWN_CODES.has(n) || n >= 100);

function parseJson(route: string, a: Answer): unknown {
  try {
    return JSON.parse(a.body);
  } catch {
    throw new CniError(ErrorCode.Io, `netplugin answered ${route} with HTTP ${a.status} and a body that is not JSON`, a.body.slice(0, 200));
  }
}

export class NetpluginClient {
  constructor(private readonly transport: Transport) {}

  get socket(): string {
    return this.transport.socket;
  }

  /** POSTs to a route and decodes its answer; a non-zero `result` becomes a CniError with that code. */
  private async post<T extends RspFailure>(route: string, body: PodAttr | GcRequest, schema: z.ZodMiniType<T>): Promise<T> {
    const a = await this.transport.exchange({ method: 'POST', path: route, body: JSON.stringify(body) });
    const parsed = schema.safeParse(parseJson(route, a));
    if (!parsed.success) throw new CniError(ErrorCode.Io, `netplugin answered ${route} with an invalid body`, describeIssues(parsed.error));
    const rsp = parsed.data;
    if ((rsp.result ?? 0) !== 0 || a.status !== 200) {
      const code = isCniCode(rsp.result) ? rsp.result : ErrorCode.Io;
      throw new CniError(code, rsp.errmsg || `netplugin answered ${route} with HTTP ${a.status}`, rsp.errinfo ?? '');
    }
    return rsp;
  }

  addPod = (attr: PodAttr): Promise<RspAddPod> => this.post(Routes.addPod, attr, rspAddPodSchema());
  delPod = (attr: PodAttr): Promise<RspDelPod> => this.post(Routes.delPod, attr, rspDelPodSchema());
  checkPod = (attr: PodAttr): Promise<RspCheckPod> => this.post(Routes.checkPod, attr, rspCheckPodSchema());
  gc = (body: GcRequest): Promise<RspGc> => this.post(Routes.gc, body, rspGcSchema());

  /** True when GET /healthz answers 200. */
  async healthy(): Promise<boolean> {
    try {
      return (await this.transport.exchange({ method: 'GET', path: Routes.healthz })).status === 200;
    } catch {
      return false;
    }
  }

  private async getJson<T>(route: string, schema: z.ZodMiniType<T>): Promise<T> {
    const a = await this.transport.exchange({ method: 'GET', path: route });
    if (a.status !== 200) throw new CniError(ErrorCode.Io, `netplugin answered GET ${route} with HTTP ${a.status}`, a.body.slice(0, 200));
    const parsed = schema.safeParse(parseJson(route, a));
    if (!parsed.success) throw new CniError(ErrorCode.Io, `netplugin answered GET ${route} with an invalid body`, describeIssues(parsed.error));
    return parsed.data;
  }

  health = (): Promise<Health> => this.getJson(Routes.healthz, healthSchema());
  endpoints = (): Promise<Endpoint[]> => this.getJson(Routes.endpoints, z.array(endpointSchema()));

  /** GET /metrics as text (Prometheus exposition). */
  async metrics(): Promise<string> {
    return (await this.transport.exchange({ method: 'GET', path: Routes.metrics })).body;
  }
}
