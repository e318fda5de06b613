// The netplugin's client, over whichever HTTP transport the caller's runtime does best: the exec'd adapter
// (Bun) one exchange over Bun.connect (unix-http.ts), the Node side axios (axios-transport.ts). Every answer
// is checked by the function generated from its zod schema in wire.ts (src/generated/validators.ts), so both
// ends speak one contract and the adapter never loads zod.
import { decodeJson } from '../decode';
import { CniError, ErrorCode } from '../errors';
import {
  type Checked,
  checkEndpoints,
  checkHealth,
  checkRspAddPod,
  checkRspCheckPod,
  checkRspDelPod,
  checkRspFixLeaks,
  checkRspGc,
} from '../generated/validators';
import { Routes } from './routes';
import type { Endpoint, FixLeaksRequest, GcRequest, Health, PodAttr, RspAddPod, RspCheckPod, RspDelPod, RspFailure, RspFixLeaks, RspGc } from './wire';

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

/** The netplugin could not be asked at all (code 11): absent, silent or unreachable. A DEL is queued instead. */
export class NetpluginUnreachable extends CniError {}

/** What a transport's failure means to a runtime: the netplugin is absent, slow or unreachable (code 11). */
export function unreachable(socket: string, timeoutMs: number, err: { code?: string; name?: string; message?: string }): NetpluginUnreachable {
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') {
    return new NetpluginUnreachable(
      ErrorCode.TryAgainLater,
      `netplugin did not answer within ${timeoutMs} ms on ${socket}`,
      'is the netplugin daemon stopped or overloaded?',
    );
  }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'FailedToOpenSocket') {
    return new NetpluginUnreachable(ErrorCode.TryAgainLater, `netplugin is not listening on ${socket}`, `${err.code}: is the netplugin daemon running?`);
  }
  return new NetpluginUnreachable(ErrorCode.TryAgainLater, `cannot reach netplugin on ${socket}: ${err.message ?? err.code ?? 'unknown error'}`);
}

const KNOWN_CODES = new Set<number>(Object.values(ErrorCode));
/** The spec's codes and plugin codes (100+) pass through; anything else from a netplugin is an I/O error. */
const isCniCode = (n: number | undefined): n is number => n !== undefined && (KNOWN_CODES.has(n) || n >= 100);

/** An answer that is not JSON, or not the route's shape, is the netplugin's fault: an I/O error for the runtime. */
function decodeAnswer<T>(route: string, a: Answer, check: (v: unknown) => Checked<T>): T {
  return decodeJson(a.body, check, {
    notJson: { code: ErrorCode.Io, msg: `netplugin answered ${route} with HTTP ${a.status} and a body that is not JSON`, details: a.body.slice(0, 200) },
    invalid: { code: ErrorCode.Io, msg: `netplugin answered ${route} with an invalid body` },
  });
}

export class NetpluginClient {
  constructor(private readonly transport: Transport) {}

  /** POSTs to a route and decodes its answer; a non-zero `result` becomes a CniError with that code. */
  private async post<T extends RspFailure>(route: string, body: PodAttr | GcRequest | FixLeaksRequest, check: (v: unknown) => Checked<T>): Promise<T> {
    const a = await this.transport.exchange({ method: 'POST', path: route, body: JSON.stringify(body) });
    const rsp = decodeAnswer(route, a, check);
    if ((rsp.result ?? 0) !== 0 || a.status !== 200) {
      const code = isCniCode(rsp.result) ? rsp.result : ErrorCode.Io;
      throw new CniError(code, rsp.errmsg || `netplugin answered ${route} with HTTP ${a.status}`, rsp.errinfo ?? '');
    }
    return rsp;
  }

  addPod = (attr: PodAttr): Promise<RspAddPod> => this.post(Routes.addPod, attr, checkRspAddPod);
  delPod = (attr: PodAttr): Promise<RspDelPod> => this.post(Routes.delPod, attr, checkRspDelPod);
  checkPod = (attr: PodAttr): Promise<RspCheckPod> => this.post(Routes.checkPod, attr, checkRspCheckPod);
  gc = (body: GcRequest): Promise<RspGc> => this.post(Routes.gc, body, checkRspGc);
  fixLeaks = (body: FixLeaksRequest): Promise<RspFixLeaks> => this.post(Routes.fixLeaks, body, checkRspFixLeaks);

  /** STATUS's question: a netplugin that cannot be reached is unhealthy, not an error. */
  async healthy(): Promise<boolean> {
    try {
      return (await this.transport.exchange({ method: 'GET', path: Routes.healthz })).status === 200;
    } catch {
      return false;
    }
  }

  private async getJson<T>(route: string, check: (v: unknown) => Checked<T>): Promise<T> {
    const a = await this.transport.exchange({ method: 'GET', path: route });
    if (a.status !== 200) throw new CniError(ErrorCode.Io, `netplugin answered GET ${route} with HTTP ${a.status}`, a.body.slice(0, 200));
    return decodeAnswer(`GET ${route}`, a, check);
  }

  health = (): Promise<Health> => this.getJson(Routes.healthz, checkHealth);
  endpoints = (): Promise<Endpoint[]> => this.getJson(Routes.endpoints, checkEndpoints);

  async metrics(): Promise<string> {
    return (await this.transport.exchange({ method: 'GET', path: Routes.metrics })).body;
  }
}
