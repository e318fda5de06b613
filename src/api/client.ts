import * as http from 'node:http';
import * as net from 'node:net';
import { CniError, ErrorCode } from '../cni/errors';
import { describeIssues } from '../cni/schema';
import * as z from 'zod/mini';
import { type Endpoint, type GcRequest, type Health, type PodAttr, Routes, type RspAddPod, endpointSchema, healthSchema, rspAddPodSchema } from './wire';

const KNOWN_CODES = new Set<number>(Object.values(ErrorCode));
/** The spec's codes and plugin codes (100+) pass through; anything else from a netplugin is an I/O error. */
const isCniCode = (n: number | undefined): n is number => n !== undefined && (KNOWN_CODES.has(n) || n >= 100);

export interface ClientOptions {
  socket: string;
  timeoutMs: number;
}

interface RawResponse {
  status: number;
  body: string;
}

/** One HTTP/1.1 exchange over the unix socket; refusals and timeouts become code 11 naming the socket. */
export function request(opts: ClientOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<RawResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        // our own connection and no Agent: an Agent parses the host name with node's IPv6 regex,
        // which costs the exec'd adapter ~4 ms to compile
        createConnection: () => net.createConnection({ path: opts.socket }),
        method,
        path,
        // contiv's router matches on the content type.
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        timeout: opts.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new CniError(ErrorCode.TryAgainLater, `netplugin did not answer within ${opts.timeoutMs} ms on ${opts.socket}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof CniError) return reject(err);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        return reject(new CniError(ErrorCode.TryAgainLater, `netplugin is not listening on ${opts.socket}`, `${err.code}: is the netplugin daemon running?`));
      }
      reject(new CniError(ErrorCode.TryAgainLater, `cannot reach netplugin on ${opts.socket}: ${err.message}`));
    });
    req.end(payload);
  });
}

/** POSTs to a contiv route and decodes RspAddPod; a non-zero `result` becomes a CniError with that code. */
export async function callPod(opts: ClientOptions, route: string, body: PodAttr | GcRequest): Promise<RspAddPod> {
  const res = await request(opts, 'POST', route, body);
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    throw new CniError(ErrorCode.Io, `netplugin answered ${route} with HTTP ${res.status} and a body that is not JSON`, res.body.slice(0, 200));
  }
  const parsed = rspAddPodSchema.safeParse(json);
  if (!parsed.success) throw new CniError(ErrorCode.Io, `netplugin answered ${route} with an invalid body`, describeIssues(parsed.error));
  const rsp = parsed.data;
  if ((rsp.result ?? 0) !== 0 || res.status !== 200) {
    const code = isCniCode(rsp.result) ? rsp.result : ErrorCode.Io;
    throw new CniError(code, rsp.errmsg || `netplugin answered ${route} with HTTP ${res.status}`, rsp.errinfo ?? '');
  }
  return rsp;
}

export const addPod = (o: ClientOptions, attr: PodAttr) => callPod(o, Routes.addPod, attr);
export const delPod = (o: ClientOptions, attr: PodAttr) => callPod(o, Routes.delPod, attr);
export const checkPod = (o: ClientOptions, attr: PodAttr) => callPod(o, Routes.checkPod, attr);
export const gc = (o: ClientOptions, body: GcRequest) => callPod(o, Routes.gc, body);

/** True when GET /healthz answers 200. */
export async function healthy(opts: ClientOptions): Promise<boolean> {
  try {
    return (await request(opts, 'GET', Routes.healthz)).status === 200;
  } catch {
    return false;
  }
}

async function getJson<T>(opts: ClientOptions, route: string, schema: z.ZodMiniType<T>): Promise<T> {
  const res = await request(opts, 'GET', route);
  if (res.status !== 200) throw new CniError(ErrorCode.Io, `netplugin answered GET ${route} with HTTP ${res.status}`, res.body.slice(0, 200));
  return schema.parse(JSON.parse(res.body));
}

export const getHealth = (opts: ClientOptions): Promise<Health> => getJson(opts, Routes.healthz, healthSchema);
export const getEndpoints = (opts: ClientOptions): Promise<Endpoint[]> => getJson(opts, Routes.endpoints, z.array(endpointSchema));
