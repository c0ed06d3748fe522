/**
 * Backpressure (issue 14, item 5): a client that stops reading while making calls with large
 * replies gets `unavailable` errors once maxBufferedBytes wait for it, instead of the server
 * queueing every reply in memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ApiBackend, RunningApiServer } from '../../electron/api/transports/websocket-server.ts';
import { CLOSE_GRACE_MS, startApiServer } from '../../electron/api/transports/websocket-server.ts';

const REPLY_CHARS = 2 ** 20; // 1 MiB of JSON per reply
const CALLS = 64;
const MAX_BUFFERED = 4 * 2 ** 20;

const backend: ApiBackend = {
  call: async () => 'x'.repeat(REPLY_CHARS),
  on: () => () => {},
};
let server: RunningApiServer;

beforeAll(async () => {
  server = await startApiServer({ backend, port: 0, maxBufferedBytes: MAX_BUFFERED });
});
afterAll(async () => {
  await server.close();
});

describe('backpressure', () => {
  it('refuses replies while the client has not read earlier ones, and recovers when it reads', async () => {
    const ws = new WebSocket(server.wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve()); // hello
      ws.once('error', reject);
    });
    const results: number[] = [];
    const refused: { id: number; code: string; message: string }[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.type === 'result') results.push(m.id);
      else if (m.type === 'error') refused.push({ id: m.id, ...m.error });
      if (results.length + refused.length === CALLS) done();
    });
    ws.pause(); // stop reading: every reply waits in the server
    for (let id = 1; id <= CALLS; id++)
      ws.send(JSON.stringify({ type: 'call', id, method: 'big', params: {} }));
    await new Promise((r) => setTimeout(r, 1500));
    ws.resume();
    await all;
    ws.close();
    expect(results.length + refused.length).toBe(CALLS);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0].code).toBe('unavailable');
    expect(refused[0].message).toMatch(/still wait for this client to read/);
    // What was queued is bounded by the limit plus what the kernel's socket buffers hold.
    expect(results.length).toBeLessThan(CALLS / 2);

    // A client that reads each reply before its next call gets every one.
    const reader = new WebSocket(server.wsUrl);
    await new Promise<void>((resolve) => reader.once('message', () => resolve()));
    for (let id = 1; id <= 8; id++) {
      const m = await new Promise<{ type: string; id: number }>((resolve) => {
        reader.once('message', (data) => resolve(JSON.parse(String(data))));
        reader.send(JSON.stringify({ type: 'call', id, method: 'big', params: {} }));
      });
      expect(m).toMatchObject({ type: 'result', id });
    }
    reader.close();
  });
});

describe('a client that goes away', () => {
  const BIG = 4 * 2 ** 20;
  let slow: RunningApiServer;
  beforeAll(async () => {
    slow = await startApiServer({
      backend: {
        call: async (method) => {
          if (method === 'later') await new Promise((r) => setTimeout(r, 300));
          return 'x'.repeat(BIG);
        },
        on: () => () => {},
      },
      port: 0,
      maxBufferedBytes: 256 * 2 ** 20,
    });
  });
  afterAll(async () => {
    await slow.close();
  });

  async function pausedClient(calls: number, method: string): Promise<WebSocket> {
    const ws = new WebSocket(slow.wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve()); // hello
      ws.once('error', reject);
    });
    ws.pause();
    for (let id = 1; id <= calls; id++) ws.send(JSON.stringify({ type: 'call', id, method, params: {} }));
    return ws;
  }

  /** Milliseconds until the server holds no connection and no queued byte (or -1 past `ms`). */
  async function drained(ms: number): Promise<number> {
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      if (slow.queuedBytes() === 0 && slow.connections() === 0) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 20));
    }
    return -1;
  }

  async function untilQueued(bytes: number): Promise<void> {
    const t0 = performance.now();
    while (slow.queuedBytes() < bytes) {
      if (performance.now() - t0 > 10_000) throw new Error(`only ${slow.queuedBytes()} bytes queued`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('closing without reading drops the replies queued for it at once', async () => {
    const ws = await pausedClient(12, 'big');
    await untilQueued(24 * 2 ** 20);
    const queued = slow.queuedBytes();
    ws.close(); // its close frame reaches the server; the server's waits behind the replies
    const ms = await drained(CLOSE_GRACE_MS + 2000);
    console.log(
      `${(queued / 2 ** 20).toFixed(0)} MiB queued; dropped ${ms.toFixed(0)} ms after the client closed`,
    );
    expect(ms).toBeGreaterThanOrEqual(0);
    ws.terminate();
  });

  it('a client that drops the connection frees its queue and its calls in flight', async () => {
    const ws = await pausedClient(12, 'big');
    await untilQueued(24 * 2 ** 20);
    ws.terminate();
    expect(await drained(2000)).toBeGreaterThanOrEqual(0);

    // replies that are computed after the client left are never queued
    const late = await pausedClient(8, 'later');
    await new Promise((r) => setTimeout(r, 50));
    late.terminate();
    expect(await drained(2000)).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 500)); // the calls finish now
    expect(slow.queuedBytes()).toBe(0);
    expect(slow.connections()).toBe(0);
  });
});
