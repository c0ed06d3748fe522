/**
 * The one API client of the renderer. Stores talk to an `ApiClient` (the contract's interface),
 * injected at start-up: the Electron preload bridge provides one as `window.circuitApi`; in
 * server mode (a browser) it is a WebSocket client that reconnects after a lost connection and
 * keeps its event subscriptions across reconnects. The protocol's framing is not written here:
 * each connection is electron/api/transports/websocket-client.ts (the same client the CLI and
 * the tests use; it imports only types and the pure ApiError, so nothing Node-only reaches the
 * bundle), and this file adds the reconnecting, the waiting for a connection and the status.
 */
import { ApiError } from '../../../electron/api/api-error.ts';
import {
  ApiEventListeners,
  createWebSocketClient,
  type WebSocketApiClient,
  type WebSocketLike,
} from '../../../electron/api/transports/websocket-client.ts';
import type { ApiClient, MethodName, Params, Result } from './types.ts';

/** Every API failure a client sees: the backend's error, or 'unavailable' when the connection is down. */
export { ApiError };

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

/** The API URL of the page's own server, or the one `?api=` names (Vite's dev server). */
export function defaultApiUrl(loc: { search: string; protocol: string; host: string }): string {
  const params = new URLSearchParams(loc.search);
  const explicit = params.get('api');
  const token = params.get('token');
  let url = explicit ?? `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/api`;
  if (token && !url.includes('token='))
    url += `${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  return url;
}

/** Opens a socket to `url` (the browser's WebSocket by default; tests pass the `ws` package's). */
export type OpenSocket = (url: string) => WebSocketLike;

/** The browser's WebSocket, looked up on globalThis so that this file type-checks (and is tested) under Node too. */
const browserSocket: OpenSocket = (url) =>
  new (globalThis as unknown as { WebSocket: new (url: string) => WebSocketLike }).WebSocket(url);

/**
 * A WebSocket client that (re)connects on its own, every `retryMs` after a lost or refused
 * connection. Calls made while it is connecting wait for the connection; a call with no answer
 * after `callTimeoutMs`, and the calls in flight when it drops, fail with 'unavailable'.
 */
export function createWebSocketApi(
  url: string,
  opts: { retryMs?: number; callTimeoutMs?: number; helloTimeoutMs?: number; openSocket?: OpenSocket } = {},
): ManagedClient {
  const retryMs = opts.retryMs ?? 1500;
  const callTimeoutMs = opts.callTimeoutMs ?? 600_000;
  const openSocket = opts.openSocket ?? browserSocket;
  const events = new ApiEventListeners();
  const statusListeners = new Set<(s: ConnectionStatus) => void>();
  let socket: WebSocketLike | null = null;
  let session: WebSocketApiClient | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let closedByUser = false;
  let status: ConnectionStatus = { state: 'connecting', detail: url };
  let waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];

  const setStatus = (s: ConnectionStatus) => {
    status = s;
    for (const l of statusListeners) l(s);
  };
  const settleWaiters = (error?: ApiError) => {
    const w = waiters;
    waiters = [];
    for (const x of w) error ? x.reject(error) : x.resolve();
  };

  const connect = () => {
    retryTimer = null;
    if (closedByUser) return;
    setStatus({ state: 'connecting', detail: url });
    const ws = openSocket(url);
    socket = ws;
    createWebSocketClient(ws, {
      callTimeoutMs,
      timeoutMs: opts.helloTimeoutMs,
      events,
      onClose: (_error, greeted) => {
        if (socket !== ws) return;
        socket = null;
        session = null;
        if (closedByUser) {
          setStatus({ state: 'closed', detail: 'client closed' });
          return;
        }
        setStatus({
          state: 'connecting',
          detail: greeted ? 'connection lost, reconnecting…' : `cannot reach ${url}, retrying…`,
        });
        retryTimer = setTimeout(connect, retryMs);
      },
    }).then(
      (s) => {
        if (socket !== ws) return;
        session = s;
        setStatus({ state: 'open', detail: `API v${s.apiVersion}` });
        settleWaiters();
      },
      // A connection that never greeted is reported (and retried) by onClose.
      () => {},
    );
  };

  const whenOpen = (): Promise<void> =>
    status.state === 'open'
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          if (closedByUser) reject(new ApiError('unavailable', 'the client is closed'));
          else waiters.push({ resolve, reject });
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
      if (!session) throw new ApiError('unavailable', 'the connection is not open');
      return session.call(method, params);
    },
    on: (event, listener) => events.on(event, listener),
    close() {
      closedByUser = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      settleWaiters(new ApiError('unavailable', 'the client is closed'));
      if (socket) socket.close(1000, 'client closed');
      else setStatus({ state: 'closed', detail: 'client closed' });
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
