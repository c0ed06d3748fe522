/**
 * The API client over WebSocket. Works with the browser's WebSocket (the renderer in server
 * mode) and with the `ws` package in Node (node-client.ts): it only needs the standard
 * on* handler properties, `send`, `close` and `readyState`.
 */
import type {
  ApiClient,
  ApiEvents,
  EventName,
  MethodName,
  Params,
  Result,
  ServerMessage,
} from '../contract.ts';
import { ApiError, fromApiErrorData } from '../errors.ts';

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

const OPEN = 1;

/** Wraps an open or opening socket; resolves once the server's hello arrives. */
export function createWebSocketClient(
  socket: WebSocketLike,
  opts: { timeoutMs?: number } = {},
): Promise<ApiClient> {
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const listeners = new Map<EventName, Set<(data: unknown) => void>>();
  let closedError: ApiError | null = null;

  const client: ApiClient = {
    call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
      if (closedError) return Promise.reject(closedError);
      if (socket.readyState !== OPEN)
        return Promise.reject(new ApiError('unavailable', 'the connection is not open'));
      const id = nextId++;
      return new Promise<Result<M>>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        socket.send(JSON.stringify({ type: 'call', id, method, params }));
      });
    },
    on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
      let set = listeners.get(event);
      if (!set) {
        set = new Set();
        listeners.set(event, set);
      }
      set.add(listener as (data: unknown) => void);
      return () => set.delete(listener as (data: unknown) => void);
    },
    close() {
      socket.close(1000, 'client closed');
    },
  };

  return new Promise<ApiClient>((resolve, reject) => {
    let greeted = false;
    const timer = setTimeout(() => {
      if (!greeted) {
        socket.close();
        reject(new ApiError('unavailable', 'the server did not answer in time'));
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
        clearTimeout(timer);
        resolve(client);
      } else if (m.type === 'result' || (m.type === 'error' && m.id !== null)) {
        const p = pending.get(m.id as number);
        if (!p) return;
        pending.delete(m.id as number);
        if (m.type === 'result') p.resolve(m.result);
        else p.reject(fromApiErrorData(m.error));
      } else if (m.type === 'event') {
        for (const l of listeners.get(m.event) ?? []) l(m.data);
      }
    };
    socket.onclose = (ev) => {
      clearTimeout(timer);
      closedError = new ApiError(
        'unavailable',
        `the connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`,
      );
      for (const p of pending.values()) p.reject(closedError);
      pending.clear();
      if (!greeted) reject(closedError);
    };
    socket.onerror = () => {};
  });
}
