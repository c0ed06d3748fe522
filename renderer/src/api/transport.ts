/**
 * The one API client of the renderer. Stores talk to an `ApiClient` (the contract's interface),
 * injected at start-up: the Electron preload bridge provides one as `window.circuitApi`; in
 * server mode (a browser) it is this WebSocket client, which reconnects after a lost connection
 * and keeps its event subscriptions across reconnects.
 */
import type {
  ApiClient,
  ApiErrorCode,
  ApiErrorData,
  ApiEvents,
  EventName,
  MethodName,
  Params,
  Result,
  ServerMessage,
} from './types.ts';

/** An error as the backend reported it (or 'unavailable' when the connection is down). */
export class ApiCallError extends Error {
  readonly code: ApiErrorCode;
  readonly field?: string;
  readonly engineCode?: string;
  constructor(data: ApiErrorData) {
    super(data.message);
    this.name = 'ApiCallError';
    this.code = data.code;
    this.field = data.field;
    this.engineCode = data.engineCode;
  }
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** What the shell shows about the connection; the Electron bridge is always 'open'. */
export interface ConnectionStatus {
  state: ConnectionState;
  detail: string;
}

export interface ManagedClient extends ApiClient {
  readonly status: ConnectionStatus;
  onStatus(listener: (s: ConnectionStatus) => void): () => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The API URL of the page's own server, or the one `?api=` names (Vite's dev server). */
export function defaultApiUrl(loc: Location): string {
  const params = new URLSearchParams(loc.search);
  const explicit = params.get('api');
  const token = params.get('token');
  let url = explicit ?? `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/api`;
  if (token && !url.includes('token='))
    url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  return url;
}

/**
 * A WebSocket client that (re)connects on its own. Calls made while it is connecting wait for
 * the connection (up to `callTimeoutMs`); calls in flight when it drops fail with 'unavailable'.
 */
export function createWebSocketApi(
  url: string,
  opts: { retryMs?: number; callTimeoutMs?: number } = {},
): ManagedClient {
  const retryMs = opts.retryMs ?? 1500;
  const callTimeoutMs = opts.callTimeoutMs ?? 600_000;
  let socket: WebSocket | null = null;
  let nextId = 1;
  let closedByUser = false;
  let status: ConnectionStatus = { state: 'connecting', detail: url };
  const pending = new Map<number, Pending>();
  const listeners = new Map<EventName, Set<(d: unknown) => void>>();
  const statusListeners = new Set<(s: ConnectionStatus) => void>();
  let waiters: Array<() => void> = [];

  const setStatus = (s: ConnectionStatus) => {
    status = s;
    for (const l of statusListeners) l(s);
  };

  const connect = () => {
    if (closedByUser) return;
    setStatus({ state: 'connecting', detail: url });
    const ws = new WebSocket(url);
    socket = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      let m: ServerMessage;
      try {
        m = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (m.type === 'hello') {
        greeted = true;
        setStatus({ state: 'open', detail: `API v${m.apiVersion}` });
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      } else if (m.type === 'result' || (m.type === 'error' && m.id !== null)) {
        const p = pending.get(m.id as number);
        if (!p) return;
        pending.delete(m.id as number);
        if (m.type === 'result') p.resolve(m.result);
        else p.reject(new ApiCallError(m.error));
      } else if (m.type === 'event') {
        for (const l of listeners.get(m.event) ?? []) {
          try {
            l(m.data);
          } catch (e) {
            console.error(`listener of ${m.event} failed`, e);
          }
        }
      }
    };
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      socket = null;
      const err = new ApiCallError({
        code: 'unavailable',
        message: `the connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`,
      });
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      setStatus({
        state: closedByUser ? 'closed' : 'connecting',
        detail: greeted ? 'connection lost, reconnecting…' : `cannot reach ${url}, retrying…`,
      });
      if (!closedByUser) setTimeout(connect, retryMs);
    };
    ws.onerror = () => {};
  };

  const whenOpen = (): Promise<void> =>
    status.state === 'open'
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          if (closedByUser) {
            reject(new ApiCallError({ code: 'unavailable', message: 'the client is closed' }));
            return;
          }
          waiters.push(resolve);
        });

  const client: ManagedClient = {
    get status() {
      return status;
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>> {
      await whenOpen();
      const ws = socket;
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        throw new ApiCallError({ code: 'unavailable', message: 'the connection is not open' });
      }
      const id = nextId++;
      return new Promise<Result<M>>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (pending.delete(id))
            reject(new ApiCallError({ code: 'unavailable', message: `${method} timed out` }));
        }, callTimeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as Result<M>);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        ws.send(JSON.stringify({ type: 'call', id, method, params }));
      });
    },
    on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
      let set = listeners.get(event);
      if (!set) {
        set = new Set();
        listeners.set(event, set);
      }
      const l = listener as (d: unknown) => void;
      set.add(l);
      return () => set.delete(l);
    },
    close() {
      closedByUser = true;
      socket?.close(1000, 'client closed');
    },
  };
  connect();
  return client;
}

/** Wraps a bridge-provided client (Electron preload) so the shell can treat both alike. */
export function managedFromBridge(bridge: ApiClient): ManagedClient {
  const status: ConnectionStatus = { state: 'open', detail: 'desktop' };
  return {
    status,
    onStatus: () => () => {},
    call: (m, p) => bridge.call(m, p),
    on: (e, l) => bridge.on(e, l),
    close: () => bridge.close(),
  };
}
