/** Connecting to `circuit serve` from Node (tests, scripts) with the `ws` package. */
import { WebSocket } from 'ws';
import { ApiError } from '../api-error.ts';
import type { ApiClient } from '../contract.ts';
import { createWebSocketClient, type WebSocketLike } from './websocket-client.ts';

export interface NodeConnectOptions {
  token?: string;
  /** Sent as the Origin header (browsers always send one; Node clients normally do not). */
  origin?: string;
  timeoutMs?: number;
}

export function connectApi(wsUrl: string, opts: NodeConnectOptions = {}): Promise<ApiClient> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const socket = new WebSocket(wsUrl, { headers, origin: opts.origin, maxPayload: 1024 * 2 ** 20 });
  return new Promise<ApiClient>((resolve, reject) => {
    // A refused upgrade (401, 403) arrives as 'unexpected-response' with the status.
    socket.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => {
        socket.terminate();
        reject(
          new ApiError(
            status === 401 ? 'unauthorized' : 'unavailable',
            `the server refused the connection (${status}): ${body.trim()}`,
          ),
        );
      });
    });
    socket.once('error', (e) =>
      reject(new ApiError('unavailable', `cannot connect to ${wsUrl}: ${e.message}`)),
    );
    createWebSocketClient(socket as unknown as WebSocketLike, { timeoutMs: opts.timeoutMs }).then(
      resolve,
      reject,
    );
  });
}
