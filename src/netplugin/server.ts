// HTTP/1.1 on the unix socket, contiv's routes plus ours. Every failure is an RspAddPod with a non-zero
// `result` (the CNI error code) and status 500, as contiv's netplugin answers; the daemon never crashes on input.
import * as http from 'node:http';
import type * as z from 'zod/mini';
import { gcRequestSchema, type Health, podAttrSchema, Routes, type RspFailure } from '../api/wire';
import { asCniError, CniError, describeIssues, ErrorCode } from '../errors';
import type { Logger } from '../log/logger';
import type { Metrics } from './metrics';
import type { NetpluginService } from './service';

const MAX_BODY = 1 << 20;

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new CniError(ErrorCode.Decode, `request body larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function decode<T>(schema: z.ZodMiniType<T>, text: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CniError(ErrorCode.Decode, 'request body is not JSON', (err as Error).message);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new CniError(ErrorCode.InvalidConfig, 'request body does not match the wire schema', describeIssues(parsed.error));
  return parsed.data;
}

function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function createServer(service: NetpluginService, metrics: Metrics, log: Logger, health: Health): http.Server {
  const podRoutes: Record<string, (body: string) => Promise<RspFailure>> = {
    [Routes.addPod]: async (body) => {
      const stop = metrics.addLatency.startTimer();
      const rsp = await service.addPod(decode(podAttrSchema(), body));
      stop();
      metrics.adds.inc();
      return rsp;
    },
    [Routes.delPod]: async (body) => {
      const rsp = await service.delPod(decode(podAttrSchema(), body));
      metrics.dels.inc();
      return rsp;
    },
    [Routes.checkPod]: (body) => service.checkPod(decode(podAttrSchema(), body)),
    [Routes.gc]: (body) => service.gc(decode(gcRequestSchema(), body)),
  };

  return http.createServer(async (req, res) => {
    const route = (req.url ?? '').split('?')[0];
    try {
      if (req.method === 'GET' && route === Routes.healthz) return send(res, 200, health);
      if (req.method === 'GET' && route === Routes.endpoints) return send(res, 200, service.endpoints());
      if (req.method === 'GET' && route === Routes.metrics) return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
      const handler = podRoutes[route];
      if (!handler || req.method !== 'POST') return send(res, 404, { result: ErrorCode.InvalidConfig, errmsg: `no route ${req.method} ${route}` });
      send(res, 200, await handler(await readBody(req)));
    } catch (err) {
      const e = asCniError(err);
      metrics.errors.inc({ route, code: String(e.code) });
      log.warn('request failed', { route, code: e.code, errmsg: e.message, errinfo: e.details });
      if (!res.headersSent) send(res, 500, { result: e.code, errmsg: e.message, errinfo: e.details } satisfies RspFailure);
    }
  });
}
