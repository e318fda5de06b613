// The adapter's transport: one HTTP/1.1 exchange over the netplugin's unix socket with Bun.connect, on the
// main thread. fetch was ~1.5 ms more per exec (its HTTP client thread and machinery, measured), and an
// exchange here is one request and one answer on a fresh connection, closed after. The socket is found by
// path, through the mount namespace: which network namespace the thread is in does not matter (see
// docs/design.md, "setns under Bun"). Whatever listens there is trusted no further than the wire: a redirect
// is refused (following it would re-send the pod's request elsewhere, from inside the pod's namespace),
// nothing is decompressed, and an answer larger than the cap is refused while it is read.
import { CniError, ErrorCode } from '../errors';
import { type Answer, type Exchange, type Transport, unreachable } from './client';

declare const Bun: {
  connect(o: {
    unix: string;
    socket: {
      open(s: BunSocket): void;
      data(s: BunSocket, chunk: Uint8Array): void;
      close(s: BunSocket): void;
      error(s: BunSocket, err: Error): void;
    };
  }): Promise<BunSocket>;
};
interface BunSocket {
  write(data: string | Uint8Array): number;
  end(): void;
}

/** A pod route's answer is a few hundred bytes: anything this large is not one. */
const MAX_POD_ANSWER_BYTES = 64 << 10;

const HEADER_END = Buffer.from('\r\n\r\n');

/** The body of a chunked answer, or undefined until all of it has arrived. */
function dechunk(raw: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (!Number.isFinite(size)) throw new Error('a chunk size that is not a number');
    if (size === 0) return Buffer.concat(parts);
    if (raw.length < eol + 2 + size + 2) return undefined;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

export class UnixHttpTransport implements Transport {
  constructor(
    readonly socket: string,
    readonly timeoutMs: number,
  ) {}

  exchange(e: Exchange): Promise<Answer> {
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    const request =
      `${e.method} ${e.path} HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: identity\r\nConnection: close\r\n` +
      (body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : '') +
      '\r\n';
    const refused = (what: string) =>
      new CniError(ErrorCode.Io, `netplugin answered ${e.path} with ${what}: refused`, `is something else listening on ${this.socket}?`);
    return new Promise<Answer>((resolve, reject) => {
      let received = Buffer.alloc(0);
      let head: { status: number; headers: Map<string, string>; bodyAt: number } | undefined;
      let done = false;
      let conn: BunSocket | undefined;
      const finish = (err: Error | undefined, answer?: Answer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        conn?.end();
        if (err) reject(err);
        else resolve(answer as Answer);
      };
      const timer = setTimeout(() => finish(unreachable(this.socket, this.timeoutMs, { name: 'TimeoutError' })), this.timeoutMs);
      /** Reads what has arrived; answers once the whole body is there (or the peer closed after it). */
      const take = (closed: boolean) => {
        if (closed && !received.length)
          return finish(unreachable(this.socket, this.timeoutMs, { code: 'ECONNRESET', message: 'the connection closed without an answer' }));
        if (!head) {
          const end = received.indexOf(HEADER_END);
          if (end < 0) return closed ? finish(refused('an incomplete answer')) : undefined;
          const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
          const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
          if (!status) return finish(refused('something that is not HTTP'));
          const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
          if (status >= 300 && status < 400) return finish(refused(`a redirect (HTTP ${status})`));
          const encoding = headers.get('content-encoding');
          if (encoding && encoding !== 'identity') return finish(refused(`a ${encoding}-encoded body`));
          head = { status, headers, bodyAt: end + HEADER_END.length };
        }
        const raw = received.subarray(head.bodyAt);
        let bodyText: Buffer | undefined;
        if (head.headers.get('transfer-encoding')?.toLowerCase() === 'chunked') bodyText = dechunk(raw);
        else if (head.headers.has('content-length')) {
          const length = Number(head.headers.get('content-length'));
          if (length > MAX_POD_ANSWER_BYTES) return finish(refused(`more than ${MAX_POD_ANSWER_BYTES} bytes`));
          if (raw.length >= length) bodyText = raw.subarray(0, length);
        } else if (closed) bodyText = raw;
        if (bodyText) return finish(undefined, { status: head.status, body: bodyText.toString('utf8') });
        if (closed) finish(refused('an answer cut short'));
      };
      const takeSafely = (closed: boolean) => {
        try {
          take(closed);
        } catch (err) {
          finish(refused((err as Error).message));
        }
      };
      Bun.connect({
        unix: this.socket,
        socket: {
          open: (s) => {
            conn = s;
            s.write(request);
            if (body) s.write(body);
          },
          data: (_s, chunk) => {
            received = Buffer.concat([received, chunk]);
            if (received.length > MAX_POD_ANSWER_BYTES + 8192) return finish(refused(`more than ${MAX_POD_ANSWER_BYTES} bytes`));
            takeSafely(false);
          },
          close: () => takeSafely(true),
          error: (_s, err) => finish(unreachable(this.socket, this.timeoutMs, err as Error & { code?: string })),
        },
      }).catch((err: Error & { code?: string }) => finish(unreachable(this.socket, this.timeoutMs, err)));
    });
  }
}
