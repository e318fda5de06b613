// The adapter's transport: Bun's fetch over the unix socket (`unix`, a Bun extension), with the runtime's
// timeout as an abort signal. Bun runs fetch's I/O on its own HTTP thread; the socket is found by path, so
// which network namespace that thread is in does not matter (see README, "setns under Bun").
import { type Answer, type Exchange, type Transport, unreachable } from './client';

export class FetchTransport implements Transport {
  constructor(
    readonly socket: string,
    readonly timeoutMs: number,
  ) {}

  async exchange(e: Exchange): Promise<Answer> {
    const init = {
      method: e.method,
      unix: this.socket,
      headers: e.body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: e.body,
      // covers the whole exchange, the answer's body included
      signal: AbortSignal.timeout(this.timeoutMs),
    };
    try {
      const res = await fetch(`http://localhost${e.path}`, init as RequestInit);
      return { status: res.status, body: await res.text() };
    } catch (err) {
      throw unreachable(this.socket, this.timeoutMs, err as Error & { code?: string });
    }
  }
}
