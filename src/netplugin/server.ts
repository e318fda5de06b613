// HTTP/1.1 on the unix socket, contiv's routes plus ours. Every failure is an RspAddPod with a non-zero
// `result` (the CNI error code) and status 500, as contiv's netplugin answers; the daemon never crashes on input.
// Its resources are bounded: connections (the oldest that never sent a request makes room for a new one),
// the time to send headers and a request, idle keep-alive time, and a body's size. An ADD whose caller is
// gone before its answer is undone. Shutdown is bounded too: stop accepting, let requests in flight finish
// for a few seconds, then close whatever remains.
import * as http from 'node:http';
import type * as net from 'node:net';
import { Routes } from '../api/routes';
import type { Health, RspFailure } from '../api/wire';
import { decodeJson, type Refusal } from '../decode';
import { asCniError, CniError, causes, ErrorCode, isUnexpected } from '../errors';
import { type Checked, checkFixLeaksRequest, checkGcRequest, checkPodAttr } from '../generated/validators';
import type { Logger } from '../log/logger';
import type { Metrics } from './metrics';
import type { NetpluginService } from './service';

export const MAX_BODY = 1 << 20;

export interface ServerLimits {
  /** Connections open at once; beyond it, the oldest connection that has not sent a request (else the oldest idle one) is closed. */
  maxConnections: number;
  /** How long a client may take to send its headers, and its whole request. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000 };

class BodyTooLarge extends CniError {
  constructor() {
    super(ErrorCode.Decode, `request body larger than ${MAX_BODY} bytes`, 'a CNIPodAttr is a few hundred bytes');
  }
}

const DRAIN_MS = 5_000;

/** Resolves once the request has been read to its end (or closed), or after `ms`. */
function drained(req: http.IncomingMessage, ms: number): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, ms);
    req.once('end', done);
    req.once('close', done);
  });
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) {
      req.resume();
      return reject(new BodyTooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) return void chunks.push(c);
      req.off('data', onData);
      // the rest is read and dropped, so that the answer can be sent and read before the connection closes
      req.resume();
      reject(new BodyTooLarge());
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A request body that is not JSON is code 6 (decoding failure); one that does not match the wire is code 7. */
const REQUEST_REFUSAL: Refusal = {
  notJson: { code: ErrorCode.Decode, msg: 'request body is not JSON' },
  invalid: { code: ErrorCode.InvalidConfig, msg: 'request body does not match the wire schema' },
};
const decode = <T>(check: (v: unknown) => Checked<T>, body: string): T => decodeJson(body, check, REQUEST_REFUSAL);

/** Sends a body; resolves true when it was handed to the connection in full, false when the caller was gone. */
function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json', close = false): Promise<boolean> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve) => {
    if (res.destroyed || res.socket?.destroyed) return resolve(false);
    res.once('close', () => resolve(res.writableFinished));
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), ...(close ? { Connection: 'close' } : {}) });
    res.end(text);
  });
}

export interface NetpluginServer {
  server: http.Server;
  /** Stops accepting, waits up to `graceMs` for requests in flight, closes what remains; resolves when all is closed. */
  shutdown(graceMs: number): Promise<void>;
}

export function createServer(
  service: NetpluginService,
  metrics: Metrics,
  log: Logger,
  health: () => Health,
  limits: ServerLimits = DEFAULT_LIMITS,
): NetpluginServer {
  /** Every open connection, oldest first: 'new' until its first request, 'busy' while it carries one, 'idle' between requests (keep-alive). */
  const connections = new Map<net.Socket, { state: 'new' | 'busy' | 'idle' }>();
  const oldest = (state: 'new' | 'idle'): net.Socket | undefined => {
    for (const [socket, c] of connections) if (c.state === state) return socket;
    return undefined;
  };
  const inFlight = new Set<Promise<unknown>>();

  /** A route's answer, and what to do when it cannot be delivered (the caller is gone). */
  type Answer = { body: RspFailure; undelivered?: () => Promise<void> };
  const answer = async (body: Promise<RspFailure>): Promise<Answer> => ({ body: await body });
  const podRoutes: Record<string, (body: string, res: http.ServerResponse) => Promise<Answer>> = {
    [Routes.addPod]: async (body, res) => {
      const attr = decode(checkPodAttr, body);
      // the caller gave up (its timeout closed the connection): what this ADD makes is undone
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      const stop = metrics.addLatency.startTimer();
      const rsp = await service.addPod(attr, { signal: gone.signal });
      stop();
      metrics.adds.inc();
      return { body: rsp, undelivered: () => service.undoAdd(attr, rsp) };
    },
    [Routes.delPod]: async (body) => {
      const rsp = await service.delPod(decode(checkPodAttr, body));
      metrics.dels.inc();
      return { body: rsp };
    },
    [Routes.checkPod]: (body) => answer(service.checkPod(decode(checkPodAttr, body))),
    [Routes.gc]: (body) => answer(service.gc(decode(checkGcRequest, body))),
    [Routes.fixLeaks]: (body) => answer(service.fixLeaks(decode(checkFixLeaksRequest, body))),
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = (req.url ?? '').split('?')[0];
    try {
      if (req.method === 'GET' && route === Routes.healthz) return void (await send(res, 200, health()));
      if (req.method === 'GET' && route === Routes.endpoints) return void (await send(res, 200, service.endpoints()));
      if (req.method === 'GET' && route === Routes.metrics) return void (await send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType));
      const handler = podRoutes[route];
      // code 7: the request itself is wrong (an unknown route is a client built for another API)
      if (!handler || req.method !== 'POST') return void (await send(res, 404, { result: ErrorCode.InvalidConfig, errmsg: `no route ${req.method} ${route}` }));
      const { body, undelivered } = await handler(await readBody(req), res);
      if (!(await send(res, 200, body))) await undelivered?.();
    } catch (err) {
      const e = asCniError(err);
      metrics.errors.inc({ route, code: String(e.code) });
      if (isUnexpected(err)) log.error('request failed unexpectedly', { route, error: (err as Error)?.stack ?? String(err) });
      else log.warn('request failed', { route, code: e.code, errmsg: e.message, errinfo: e.details, cause: causes(err) || undefined });
      const status = err instanceof BodyTooLarge ? 413 : 500;
      // the answer to an oversized body closes the connection: first the rest is read and dropped (for at
      // most DRAIN_MS), so that a client still writing it reads the answer instead of a broken pipe
      if (status === 413) await drained(req, DRAIN_MS);
      await send(res, status, { result: e.code, errmsg: e.message, errinfo: e.details } satisfies RspFailure, 'application/json', status === 413);
    }
  }

  const server = http.createServer((req, res) => {
    const conn = connections.get(req.socket);
    if (conn) conn.state = 'busy';
    res.once('close', () => {
      if (conn) conn.state = 'idle';
    });
    const work = handle(req, res);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.on('connection', (socket: net.Socket) => {
    if (connections.size >= limits.maxConnections) {
      // a client that connected and sent nothing holds no work: the oldest such one makes room, else the oldest
      // keep-alive connection between requests (a pooled client's; it opens another)
      const victim = oldest('new') ?? oldest('idle');
      if (!victim) return void socket.destroy();
      // counted out now, not at its 'close': the next connection of a burst must find another
      connections.delete(victim);
      victim.destroy();
    }
    connections.set(socket, { state: 'new' });
    socket.once('close', () => connections.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  async function shutdown(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // connections with no request in flight (idle, or half-sent) have nothing to finish
    for (const [socket, c] of connections) if (c.state !== 'busy') socket.destroy();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled([...inFlight]), grace]);
    clearTimeout(timer);
    for (const socket of connections.keys()) socket.destroy();
    await closed;
    // handlers cut off above still finish their kernel and store work (each bounded by its own timeouts)
    await Promise.allSettled([...inFlight]);
  }

  return { server, shutdown };
}
