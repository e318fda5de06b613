// The Node side's transport (contivctl, the test harness, bench, demo): axios over the unix socket, where
// its load time does not matter. The exec'd adapter uses unix-http.ts instead.
import axios from 'axios';
import { type Answer, type Exchange, NetpluginClient, type Transport, unreachable } from './client';

/** The largest answer read: /endpoints grows with the node's pods (~300 bytes each). */
const MAX_ANSWER_BYTES = 64 << 20;

export class AxiosTransport implements Transport {
  constructor(
    readonly socket: string,
    readonly timeoutMs: number,
  ) {}

  async exchange(e: Exchange): Promise<Answer> {
    try {
      const res = await axios.request<string>({
        socketPath: this.socket,
        url: `http://localhost${e.path}`,
        method: e.method,
        data: e.body,
        headers: e.body === undefined ? {} : { 'Content-Type': 'application/json' },
        // the whole exchange, not only the wait for the first byte
        signal: AbortSignal.timeout(this.timeoutMs),
        timeout: this.timeoutMs,
        // every status is an answer the client decodes; the body stays text until the schema reads it
        validateStatus: () => true,
        responseType: 'text',
        transformResponse: (data: string) => data,
        maxRedirects: 0,
        decompress: false,
        maxContentLength: MAX_ANSWER_BYTES,
      });
      return { status: res.status, body: res.data };
    } catch (err) {
      const e = err as Error & { code?: string; cause?: { code?: string; name?: string } };
      // axios wraps the socket's error (ERR_CANCELED for our abort signal)
      throw unreachable(
        this.socket,
        this.timeoutMs,
        e.code === 'ERR_CANCELED' ? { name: 'TimeoutError' } : { code: e.cause?.code ?? e.code, message: e.message },
      );
    }
  }
}

/** The netplugin's client over axios: what contivctl, the tests and the bench use (the exec'd adapter has its own transport). */
export function axiosClient(socket: string, timeoutMs = 10_000): NetpluginClient {
  return new NetpluginClient(new AxiosTransport(socket, timeoutMs));
}
