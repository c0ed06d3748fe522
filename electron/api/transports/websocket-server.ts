/**
 * Server mode: the API over WebSocket (path /api) and the built UI over HTTP, on one port.
 *
 * Security:
 * - Loopback (127.0.0.1, ::1, localhost) by default. Binding any other address requires a
 *   token (generated when none is given); clients send it as `Authorization: Bearer <token>` or
 *   `?token=<token>` on the WebSocket URL. A token can be required on loopback too.
 * - Origin: a browser's WebSocket must come from this server's own origin (the UI it serves)
 *   or an origin explicitly allowed; non-browser clients send no Origin.
 * - Host (loopback only): the Host header must name the loopback address and port, so a web
 *   page cannot reach the API through DNS rebinding.
 * - Messages are bounded (maxPayloadBytes, default MAX_MESSAGE_BYTES); every call is validated
 *   by the service's schema.
 * - Backpressure: a reply is not queued while more than maxBufferedBytes (default
 *   MAX_BUFFERED_BYTES) already wait for that client to read them; the call gets an
 *   `unavailable` error instead, so a client that never reads cannot grow the server. A client
 *   that stops reading also stops answering pings and is dropped at the next heartbeat, which
 *   frees what was buffered for it. A client that closes gets no further replies, and what
 *   still waits for it is dropped within CLOSE_GRACE_MS (its socket is destroyed then, instead
 *   of after ws's 30 s close timeout); the transport keeps no other per-client state.
 * - A malformed or oversized frame closes that connection only (1002 protocol error, 1007
 *   invalid UTF-8, 1009 too big); every socket has an error handler, so no client can take the
 *   server down.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ServerOptions, WebSocket, WebSocketServer } from 'ws';
import type { ApiEvents, ClientMessage, EventName, ServerMessage } from '../contract.ts';
import { API_VERSION, EVENT_NAMES } from '../contract.ts';
import { ApiError, toApiError } from '../errors.ts';
import { BASE_HEADERS, requestUrl, serverCsp, serveStatic } from './http-static.ts';

/** What the transport needs from the backend (WorkbenchService implements it). */
export interface ApiBackend {
  call(method: string, params: unknown): Promise<unknown>;
  on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void;
}

export interface ApiServerOptions {
  backend: ApiBackend;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port (the chosen one is in the result). */
  port?: number;
  /** Required token; generated when the host is not loopback and none is given. */
  token?: string | null;
  /** Origins allowed besides the server's own (e.g. a Vite dev server's http://localhost:5173). */
  allowedOrigins?: string[];
  /** Folder of the built UI, served over HTTP when it exists. */
  staticDir?: string | null;
  maxPayloadBytes?: number;
  /** The most reply bytes kept waiting for one client to read (default MAX_BUFFERED_BYTES). */
  maxBufferedBytes?: number;
  log?: (line: string) => void;
}

export interface RunningApiServer {
  host: string;
  port: number;
  /** http://host:port/ */
  url: string;
  /** ws://host:port/api */
  wsUrl: string;
  token: string | null;
  /** Whether the UI is served. */
  servesUi: boolean;
  /** Reply and event bytes waiting for the connected clients to read them (0 when none wait). */
  queuedBytes(): number;
  /** Connections open or closing. */
  connections(): number;
  close(): Promise<void>;
}

const EVENTS: readonly EventName[] = EVENT_NAMES;

/**
 * The largest message the server accepts: the longest string V8 can make (2^29 − 24 UTF-16
 * units), since a text message is decoded to one string. The largest legitimate request,
 * `graphs.importJson`, carries graph JSON of at most that many characters (schema.ts), so no
 * valid call is cut; anything bigger is closed with 1009 before it is buffered.
 */
export const MAX_MESSAGE_BYTES = 2 ** 29 - 24;

/**
 * The most reply bytes queued for one client before further replies are refused. One reply
 * is always sent when nothing waits, however large, so no valid call is cut.
 */
export const MAX_BUFFERED_BYTES = 64 * 2 ** 20;

/**
 * How long a closing connection may take to finish its close handshake before its socket is
 * destroyed. A client that closes without reading would otherwise keep every reply queued for
 * it in memory for ws's default 30 s, since its close frame waits behind them.
 */
export const CLOSE_GRACE_MS = 1000;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function generateToken(): string {
  return crypto.randomBytes(24).toString('base64url');
}

/**
 * The token a server on `host` requires: the one given; else none on loopback and a generated
 * one anywhere else. An empty token is refused where one is required.
 */
export function serverToken(host: string, given: string | null | undefined): string | null {
  if (given === undefined || given === null) return isLoopbackHost(host) ? null : generateToken();
  if (given === '') {
    if (isLoopbackHost(host)) return null;
    throw new ApiError('invalid_params', `binding ${host} requires a token`, { field: 'token' });
  }
  return given;
}

function sameSecret(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

function reject(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  socket.write(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroy();
}

export async function startApiServer(opts: ApiServerOptions): Promise<RunningApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  const token = serverToken(host, opts.token);
  const log = opts.log ?? (() => {});
  const staticDir = opts.staticDir && fs.existsSync(opts.staticDir) ? opts.staticDir : null;
  const allowed = new Set((opts.allowedOrigins ?? []).map((o) => o.replace(/\/$/, '').toLowerCase()));
  let port = opts.port ?? 0;

  const httpServer = http.createServer((req, res) => {
    const url = requestUrl(req.url);
    const headers = { ...BASE_HEADERS, 'Content-Security-Policy': serverCsp(req.headers.host, allowed) };
    if (!url) {
      res.writeHead(400, { ...headers, 'Content-Type': 'text/plain' });
      res.end('bad request target\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    if (url.pathname === '/health') {
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: true, app: 'circuit-workbench', apiVersion: API_VERSION }));
      return;
    }
    if (staticDir) {
      serveStatic(staticDir, req, res, headers);
      return;
    }
    res.writeHead(url.pathname === '/' ? 200 : 404, {
      ...headers,
      'Content-Type': 'text/plain; charset=utf-8',
    });
    res.end(
      `Circuit Workbench server. API: WebSocket at /api (see electron/api/contract.ts).\n` +
        'The UI is not built here (renderer/dist is missing): run `npm run build:ui`, then restart circuit serve.\n',
    );
  });

  // closeTimeout is a ws 8.x option @types/ws does not list yet
  const wsOptions: ServerOptions & { closeTimeout: number } = {
    noServer: true,
    maxPayload: opts.maxPayloadBytes ?? MAX_MESSAGE_BYTES,
    closeTimeout: CLOSE_GRACE_MS,
  };
  const wss = new WebSocketServer(wsOptions);
  // Errors of a socket or a connection concern that client only: log them, never throw.
  wss.on('error', (e) => log(`WebSocket server error: ${e.message}`));

  const ownOrigins = (): Set<string> => {
    const names = loopback ? ['127.0.0.1', 'localhost', '[::1]'] : [urlHost(host)];
    return new Set(names.map((n) => `http://${n}:${port}`));
  };

  httpServer.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = requestUrl(req.url);
    if (url?.pathname !== '/api') return reject(socket, 404, 'the API is at /api');
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (loopback && !ownOrigins().has(`http://${hostHeader}`)) {
      log(`rejected a connection with Host "${hostHeader}"`);
      return reject(socket, 403, 'bad Host header');
    }
    const origin = req.headers.origin?.replace(/\/$/, '').toLowerCase();
    if (origin !== undefined) {
      const same = origin === `http://${hostHeader}` || origin === `https://${hostHeader}`;
      const ok = allowed.has(origin) || (loopback ? ownOrigins().has(origin) : same);
      if (!ok) {
        log(`rejected a connection from origin ${origin}`);
        return reject(socket, 403, `origin ${origin} is not allowed`);
      }
    }
    if (token) {
      const auth = req.headers.authorization;
      const given = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : url.searchParams.get('token');
      if (!given || !sameSecret(given, token)) {
        log('rejected a connection without a valid token');
        return reject(
          socket,
          401,
          'a valid token is required (Authorization: Bearer <token> or ?token=<token>)',
        );
      }
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const send = (ws: WebSocket, m: ServerMessage) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  };
  const maxBuffered = opts.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
  /** A call's reply, unless the client has not read what was already sent (backpressure). */
  const reply = (ws: WebSocket, id: number, result: unknown) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify({ type: 'result', id, result: result ?? null } satisfies ServerMessage);
    const waiting = ws.bufferedAmount;
    if (waiting > 0 && waiting + Buffer.byteLength(text) > maxBuffered) {
      log(`refused a ${text.length}-character reply: ${waiting} bytes wait for that client to read`);
      send(ws, {
        type: 'error',
        id,
        error: {
          code: 'unavailable',
          message: `the reply was not sent: ${waiting} bytes of earlier replies still wait for this client to read them; read replies before making more calls`,
        },
      });
      return;
    }
    ws.send(text);
  };

  wss.on('connection', (ws: WebSocket & { alive?: boolean }) => {
    ws.alive = true;
    // A malformed frame (bad length, opcode, RSV bits, masking, UTF-8, control frame size,
    // stray continuation) or an oversized message: ws has already sent the close frame
    // (1002/1007/1009) and is closing this connection; without this handler it would throw.
    ws.on('error', (e) => log(`closing a connection: ${e.message}`));
    ws.on('pong', () => {
      ws.alive = true;
    });
    send(ws, { type: 'hello', apiVersion: API_VERSION, app: 'circuit-workbench' });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        send(ws, {
          type: 'error',
          id: null,
          error: { code: 'invalid_params', message: 'send JSON text frames' },
        });
        return;
      }
      let msg: ClientMessage;
      try {
        msg = JSON.parse(data.toString()); // throws too for a text longer than V8's strings
      } catch {
        send(ws, {
          type: 'error',
          id: null,
          error: { code: 'invalid_params', message: 'the message is not JSON' },
        });
        return;
      }
      const callId = (msg as { id?: unknown })?.id;
      if (
        typeof msg !== 'object' ||
        msg === null ||
        msg.type !== 'call' ||
        !Number.isSafeInteger(callId) ||
        typeof msg.method !== 'string'
      ) {
        send(ws, {
          type: 'error',
          id: Number.isSafeInteger(callId) ? (callId as number) : null,
          error: {
            code: 'invalid_params',
            message:
              'a message must be {"type": "call", "id": <integer>, "method": <string>, "params": {...}}',
          },
        });
        return;
      }
      opts.backend.call(msg.method, msg.params).then(
        (result) => reply(ws, msg.id, result),
        (e) => send(ws, { type: 'error', id: msg.id, error: toApiError(e).toJSON() }),
      );
    });
  });

  const unsubscribe = EVENTS.map((event) =>
    opts.backend.on(event, (data) => {
      const text = JSON.stringify({ type: 'event', event, data } satisfies ServerMessage);
      for (const ws of wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send(text);
    }),
  );

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients as Set<WebSocket & { alive?: boolean }>) {
      if (ws.alive === false) {
        ws.terminate();
        continue;
      }
      ws.alive = false;
      ws.ping();
    }
  }, 30_000);
  heartbeat.unref();

  await new Promise<void>((resolve, rejectListen) => {
    httpServer.once('error', (e: NodeJS.ErrnoException) =>
      rejectListen(
        new ApiError(
          'unavailable',
          e.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is in use`
            : `cannot listen on ${host}:${port}: ${e.message}`,
          { field: 'port' },
        ),
      ),
    );
    httpServer.listen(port, host, () => resolve());
  });
  port = (httpServer.address() as AddressInfo).port;
  const base = `${urlHost(host)}:${port}`;
  log(`listening on http://${base}/ (API: ws://${base}/api)`);

  return {
    host,
    port,
    url: `http://${base}/`,
    wsUrl: `ws://${base}/api`,
    token,
    servesUi: staticDir !== null,
    queuedBytes() {
      let n = 0;
      for (const ws of wss.clients) n += ws.bufferedAmount;
      return n;
    },
    connections: () => wss.clients.size,
    async close() {
      clearInterval(heartbeat);
      for (const u of unsubscribe) u();
      for (const ws of wss.clients) ws.close(1001, 'server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
