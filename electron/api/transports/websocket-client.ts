/**
 * The API client over one WebSocket: the request / response / event framing of the protocol,
 * written once for every client. Node (node-client.ts with the `ws` package: the CLI, tests,
 * e2e) and the renderer (renderer/src/api/transport.ts, which wraps it to reconnect) both use
 * it. It needs only the standard WebSocket interface (on* handler properties, `send`, `close`,
 * `readyState`) and imports nothing but types and the pure ApiError, so the renderer's bundle
 * can include it.
 */
import { ApiError, fromApiErrorData } from '../api-error.ts';
import type {
  ApiClient,
  ApiEvents,
  EventName,
  MethodName,
  Params,
  Result,
  ServerMessage,
} from '../contract.ts';

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** WebSocket.OPEN (not read from a global: Node 20 has no WebSocket global). */
const OPEN = 1;

type Listener = (data: unknown) => void;

/**
 * Event subscriptions, kept apart from any one socket so that a reconnecting client can hand
 * the same set to each new connection and its listeners survive the reconnect.
 */
export class ApiEventListeners {
  private readonly byEvent = new Map<EventName, Set<Listener>>();

  on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
    let set = this.byEvent.get(event);
    if (!set) {
      set = new Set();
      this.byEvent.set(event, set);
    }
    const l = listener as Listener;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }

  /** Calls every listener of `event`; one that throws is logged and does not stop the others. */
  emit(event: EventName, data: unknown): void {
    for (const l of this.byEvent.get(event) ?? []) {
      try {
        l(data);
      } catch (e) {
        console.error(`listener of ${event} failed`, e);
      }
    }
  }
}

export interface WebSocketApiClient extends ApiClient {
  /** The API version the server's hello announced. */
  readonly apiVersion: number;
}

export interface WebSocketClientOptions {
  /** How long to wait for the server's hello (default 10 s); the socket is closed after it. */
  timeoutMs?: number;
  /** A call with no answer after this long fails with 'unavailable' (default: no limit). */
  callTimeoutMs?: number;
  /** Where events go (default: a set of this connection's own). */
  events?: ApiEventListeners;
  /** Called once when the socket closes, after the calls in flight were rejected with `error`. */
  onClose?: (error: ApiError, greeted: boolean) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Wraps an open or opening socket; resolves once the server's hello arrives. */
export function createWebSocketClient(
  socket: WebSocketLike,
  opts: WebSocketClientOptions = {},
): Promise<WebSocketApiClient> {
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const events = opts.events ?? new ApiEventListeners();
  let closedError: ApiError | null = null;
  let apiVersion = 0;

  const client: WebSocketApiClient = {
    get apiVersion() {
      return apiVersion;
    },
    call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
      if (closedError) return Promise.reject(closedError);
      if (socket.readyState !== OPEN)
        return Promise.reject(new ApiError('unavailable', 'the connection is not open'));
      const id = nextId++;
      return new Promise<Result<M>>((resolve, reject) => {
        const timer =
          opts.callTimeoutMs === undefined
            ? null
            : setTimeout(() => {
                if (pending.delete(id)) reject(new ApiError('unavailable', `${method} timed out`));
              }, opts.callTimeoutMs);
        const settled = () => {
          if (timer !== null) clearTimeout(timer);
        };
        pending.set(id, {
          resolve: (v) => {
            settled();
            resolve(v as Result<M>);
          },
          reject: (e) => {
            settled();
            reject(e);
          },
        });
        socket.send(JSON.stringify({ type: 'call', id, method, params }));
      });
    },
    on: (event, listener) => events.on(event, listener),
    close() {
      socket.close(1000, 'client closed');
    },
  };

  return new Promise<WebSocketApiClient>((resolve, reject) => {
    let greeted = false;
    const helloTimer = setTimeout(() => {
      if (!greeted) {
        reject(new ApiError('unavailable', 'the server did not answer in time'));
        socket.close();
      }
    }, opts.timeoutMs ?? 10_000);
    socket.onmessage = (ev) => {
      let m: ServerMessage;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (m.type === 'hello') {
        greeted = true;
        apiVersion = m.apiVersion;
        clearTimeout(helloTimer);
        resolve(client);
      } else if (m.type === 'result' || (m.type === 'error' && m.id !== null)) {
        const p = pending.get(m.id as number);
        if (!p) return;
        pending.delete(m.id as number);
        if (m.type === 'result') p.resolve(m.result);
        else p.reject(fromApiErrorData(m.error));
      } else if (m.type === 'event') {
        events.emit(m.event, m.data);
      }
    };
    socket.onclose = (ev) => {
      clearTimeout(helloTimer);
      closedError = new ApiError(
        'unavailable',
        `the connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`,
      );
      for (const p of pending.values()) p.reject(closedError);
      pending.clear();
      if (!greeted) reject(closedError);
      opts.onClose?.(closedError, greeted);
    };
    // Errors are followed by a close event, which reports them.
    socket.onerror = () => {};
  });
}
