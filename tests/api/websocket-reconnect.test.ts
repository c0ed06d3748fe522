/**
 * The renderer's reconnecting client (renderer/src/api/transport.ts) over the real WebSocket
 * server (startApiServer) and the `ws` package's WebSocket in place of the browser's: it waits
 * for a connection, reconnects after a drop and keeps its event listeners, fails calls in
 * flight with 'unavailable', rebuilds the backend's typed errors as ApiError, and stops on
 * close. (That the modules the renderer bundles from electron/ stay free of Node code is
 * tests/architecture/layering.test.ts's.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ApiError } from '../../electron/api/api-error.ts';
import type { ApiEvents, EventName, ServerInfo } from '../../electron/api/contract.ts';
import type { WebSocketLike } from '../../electron/api/transports/websocket-client.ts';
import {
  type ApiBackend,
  type RunningApiServer,
  startApiServer,
} from '../../electron/api/transports/websocket-server.ts';
import {
  type ConnectionStatus,
  createWebSocketApi,
  defaultApiUrl,
  type ManagedClient,
} from '../../renderer/src/api/transport.ts';

const INFO: ServerInfo = { app: 'circuit-workbench', apiVersion: 1, schemaVersion: 1, dataDir: '/nowhere' };

/**
 * A backend the test drives: answers server.info, fails traces.get with an engine error,
 * holds traces.cancel until `release()`, and emits the events the test asks for.
 */
class ScriptedBackend implements ApiBackend {
  private readonly listeners = new Map<EventName, Set<(d: unknown) => void>>();
  private held: Array<() => void> = [];
  calls: string[] = [];

  async call(method: string, _params: unknown): Promise<unknown> {
    this.calls.push(method);
    if (method === 'server.info') return INFO;
    if (method === 'traces.get')
      throw new ApiError('engine', 'the checkpoint is broken', {
        field: 'model.safetensors',
        engineCode: 'io',
      });
    if (method === 'traces.cancel')
      return new Promise<unknown>((resolve) => this.held.push(() => resolve(null)));
    throw new ApiError('unknown_method', `unknown method ${method}`);
  }

  on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as (d: unknown) => void);
    return () => set.delete(listener as (d: unknown) => void);
  }

  emit<E extends EventName>(event: E, data: ApiEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) l(data);
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

const openWs = (url: string) => new WebSocket(url) as unknown as WebSocketLike;
const opened: Array<{ close(): unknown }> = [];

async function serve(backend: ApiBackend, port = 0): Promise<RunningApiServer> {
  const s = await startApiServer({ backend, port, log: () => {} });
  opened.push(s);
  return s;
}

function client(url: string, opts: { callTimeoutMs?: number } = {}): ManagedClient {
  const c = createWebSocketApi(url, { retryMs: 50, openSocket: openWs, ...opts });
  opened.push(c);
  return c;
}

function statusReaches(c: ManagedClient, want: (s: ConnectionStatus) => boolean): Promise<ConnectionStatus> {
  if (want(c.status)) return Promise.resolve(c.status);
  return new Promise((resolve) => {
    const off = c.onStatus((s) => {
      if (want(s)) {
        off();
        resolve(s);
      }
    });
  });
}

const nextEvent = <E extends EventName>(c: ManagedClient, event: E) =>
  new Promise<ApiEvents[E]>((resolve) => {
    const off = c.on(event, (d) => {
      off();
      resolve(d);
    });
  });

afterEach(async () => {
  for (const x of opened.splice(0).reverse()) await x.close();
});

describe('reconnecting WebSocket client', () => {
  it('connects, answers calls, delivers events, and rejects with the backend’s ApiError', async () => {
    const backend = new ScriptedBackend();
    const server = await serve(backend);
    const c = client(server.wsUrl);
    expect(c.status.state).toBe('connecting');
    expect(await statusReaches(c, (s) => s.state === 'open')).toEqual({ state: 'open', detail: 'API v1' });
    expect(await c.call('server.info', {})).toEqual(INFO);

    const got = nextEvent(c, 'library.changed');
    backend.emit('library.changed', { entity: 'project', id: 7 });
    expect(await got).toEqual({ entity: 'project', id: 7 });

    const err = await c.call('traces.get', { id: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      code: 'engine',
      message: 'the checkpoint is broken',
      field: 'model.safetensors',
      engineCode: 'io',
    });
  });

  it('holds calls made before the server is up until it connects', async () => {
    // A free port: take one, close it, and point the client at it before anything listens.
    const probe = await serve(new ScriptedBackend());
    const port = probe.port;
    await probe.close();
    const c = client(`ws://127.0.0.1:${port}/api`);
    const early = c.call('server.info', {});
    const retrying = await statusReaches(c, (s) => s.detail.startsWith('cannot reach'));
    expect(retrying.state).toBe('connecting');
    await serve(new ScriptedBackend(), port);
    expect(await early).toEqual(INFO);
    expect(c.status.state).toBe('open');
  });

  it('fails calls in flight when the connection drops, reconnects, and keeps its listeners', async () => {
    const first = new ScriptedBackend();
    const server = await serve(first);
    const c = client(server.wsUrl);
    await statusReaches(c, (s) => s.state === 'open');
    const seen: Array<ApiEvents['trace.deleted']> = [];
    c.on('trace.deleted', (d) => seen.push(d));
    const dropped: unknown[] = [];
    const offDropped = c.on('trace.deleted', (d) => dropped.push(d));
    offDropped();

    const inFlight = c.call('traces.cancel', { id: 3 }).then(
      () => null,
      (e: unknown) => e,
    );
    await expect.poll(() => first.calls).toContain('traces.cancel');
    const lost = statusReaches(c, (s) => s.state === 'connecting');
    await server.close();
    const err = await inFlight;
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'unavailable', message: expect.stringContaining('connection closed') });
    expect((await lost).detail).toBe('connection lost, reconnecting…');

    const second = new ScriptedBackend();
    await serve(second, server.port);
    await statusReaches(c, (s) => s.state === 'open');
    expect(await c.call('server.info', {})).toEqual(INFO);
    second.emit('trace.deleted', { traceId: 42, permanent: false });
    await expect.poll(() => seen).toEqual([{ traceId: 42, permanent: false }]);
    expect(dropped).toEqual([]);
  });

  it('fails a call with no answer after callTimeoutMs', async () => {
    const backend = new ScriptedBackend();
    const server = await serve(backend);
    const c = client(server.wsUrl, { callTimeoutMs: 200 });
    const err = await c.call('traces.cancel', { id: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'unavailable', message: 'traces.cancel timed out' });
    // The late answer is dropped, the connection stays usable.
    backend.release();
    expect(await c.call('server.info', {})).toEqual(INFO);
  });

  it('stops on close: status closed, no reconnect, calls refused', async () => {
    const backend = new ScriptedBackend();
    const server = await serve(backend);
    const c = client(server.wsUrl);
    await statusReaches(c, (s) => s.state === 'open');
    c.close();
    expect(await statusReaches(c, (s) => s.state === 'closed')).toEqual({
      state: 'closed',
      detail: 'client closed',
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(server.connections()).toBe(0);
    await expect(c.call('server.info', {})).rejects.toMatchObject({
      name: 'ApiError',
      code: 'unavailable',
      message: 'the client is closed',
    });
  });

  it('closed while retrying: the pending calls fail and no socket opens again', async () => {
    const probe = await serve(new ScriptedBackend());
    const port = probe.port;
    await probe.close();
    const c = client(`ws://127.0.0.1:${port}/api`);
    const waiting = c.call('server.info', {}).then(
      () => null,
      (e: unknown) => e,
    );
    await statusReaches(c, (s) => s.detail.startsWith('cannot reach'));
    c.close();
    expect(await waiting).toMatchObject({ code: 'unavailable', message: 'the client is closed' });
    const late = await serve(new ScriptedBackend(), port);
    await new Promise((r) => setTimeout(r, 300));
    expect(late.connections()).toBe(0);
    expect(c.status.state).toBe('closed');
  });

  it('builds the API URL from the page’s location and its ?token= / ?api=', () => {
    expect(defaultApiUrl({ protocol: 'http:', host: '127.0.0.1:7411', search: '' })).toBe(
      'ws://127.0.0.1:7411/api',
    );
    expect(defaultApiUrl({ protocol: 'https:', host: 'box:443', search: '?token=a b' })).toBe(
      'wss://box:443/api?token=a%20b',
    );
    expect(
      defaultApiUrl({
        protocol: 'http:',
        host: 'localhost:5173',
        search: '?api=ws://127.0.0.1:9/api&token=t',
      }),
    ).toBe('ws://127.0.0.1:9/api?token=t');
  });
});
