/**
 * Server mode over a real WebSocket on 127.0.0.1 (ephemeral port): calls and events, typed errors
 * on the wire, malformed frames, Origin / Host / token checks, and the static UI.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EVENT_NAMES, type EventName } from '../../electron/api/contract.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import {
  isLoopbackHost,
  type RunningApiServer,
  serverToken,
  startApiServer,
} from '../../electron/api/transports/websocket-server.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { saveSynthetic, tempDir } from '../store/helpers.ts';
import { syntheticGraph } from '../store/synthetic.ts';
import { rejection } from './helpers.ts';

const tmp = tempDir('cw-ws-');
const ui = path.join(tmp.dir, 'dist');
let store: Store;
let service: WorkbenchService;
let open: RunningApiServer;
let locked: RunningApiServer;
const TOKEN = 'test-token-0123456789abcdef';

beforeAll(async () => {
  fs.mkdirSync(path.join(ui, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(ui, 'index.html'), '<!doctype html><title>Circuit Workbench</title>');
  fs.writeFileSync(path.join(ui, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(tmp.dir, 'secret.txt'), 'secret');
  store = Store.open(path.join(tmp.dir, 'data'));
  service = new WorkbenchService({
    store,
    compute: new InProcessCompute({ cacheRoot: path.join(tmp.dir, 'cache') }),
  }).start();
  open = await startApiServer({
    backend: service,
    port: 0,
    staticDir: ui,
    allowedOrigins: ['http://localhost:5173'],
  });
  locked = await startApiServer({ backend: service, host: '127.0.0.1', port: 0, token: TOKEN });
});
afterAll(async () => {
  await open.close();
  await locked.close();
  await service.close();
  store.close();
  tmp.cleanup();
});

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; type: string; csp: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            body,
            type: String(res.headers['content-type']),
            csp: String(res.headers['content-security-policy'] ?? ''),
          }),
        );
      })
      .on('error', reject);
  });
}

/** The HTTP status of a WebSocket upgrade attempt (101 when accepted). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}

describe('websocket API', () => {
  it('binds loopback on an ephemeral port with no token by default', () => {
    expect(open.host).toBe('127.0.0.1');
    expect(open.port).toBeGreaterThan(0);
    expect(open.token).toBeNull();
    expect(open.wsUrl).toBe(`ws://127.0.0.1:${open.port}/api`);
    expect(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('0.0.0.0') || isLoopbackHost('192.168.1.4') || isLoopbackHost('::')).toBe(false);
  });

  it('answers calls, delivers events and typed errors', async () => {
    const client = await connectApi(open.wsUrl);
    try {
      const info = await client.call('server.info', {});
      expect(info).toMatchObject({ app: 'circuit-workbench', apiVersion: 1, dataDir: store.dataDir });
      const changed = new Promise((resolve) => client.on('library.changed', resolve));
      const p = await client.call('projects.create', { name: 'Over the wire' });
      expect(await changed).toEqual({ entity: 'project', id: p.id });
      const t = saveSynthetic(store, syntheticGraph(1), { projectId: p.id, tags: ['ws'] });
      const list = await client.call('traces.list', { tags: ['ws'] });
      expect(list.traces.map((x) => x.id)).toEqual([t.id]);
      const view = await client.call('graphs.view', {
        traceId: t.id,
        nodeThreshold: 0.6,
        edgeThreshold: 0.9,
      });
      expect(view.cached).toBe(false);
      expect(view.nodes.length).toBeGreaterThan(0);
      expect(view.edges.source.length).toBe(view.edges.weight.length);
      const err = await rejection(client.call('graphs.view', { traceId: t.id, nodeThreshold: 7 }));
      expect(err).toMatchObject({ code: 'invalid_params', field: 'nodeThreshold' });
      expect(err.message).toBe('invalid params: nodeThreshold must be a number in [0, 1] (got 7)');
      expect(await rejection(client.call('traces.get', { id: 999 }))).toMatchObject({ code: 'not_found' });
    } finally {
      await client.close();
    }
  });

  it('forwards every event of the contract', async () => {
    const subscribed: EventName[] = [];
    const backend = {
      call: service.call.bind(service),
      on: ((event: EventName, listener: never) => {
        subscribed.push(event);
        return service.on(event, listener);
      }) as WorkbenchService['on'],
    };
    const server = await startApiServer({ backend, port: 0 });
    await server.close();
    expect([...subscribed].sort()).toEqual([...EVENT_NAMES].sort());
    expect(EVENT_NAMES).toContain('intervention.updated');
  });

  it('answers malformed frames with an error instead of dropping the connection', async () => {
    const ws = new WebSocket(open.wsUrl);
    const messages: Array<{ type: string; id?: unknown; error?: { code: string } }> = [];
    await new Promise<void>((resolve) => {
      ws.on('message', (d) => {
        messages.push(JSON.parse(String(d)));
        if (messages.length === 5) resolve();
      });
      ws.once('open', () => {
        ws.send('not json');
        ws.send(JSON.stringify({ type: 'call', method: 'server.info' })); // no id
        ws.send(Buffer.from([1, 2, 3]), { binary: true });
        ws.send(JSON.stringify({ type: 'call', id: 7, method: 'server.info', params: { extra: 1 } }));
      });
    });
    ws.close();
    expect(messages[0].type).toBe('hello');
    expect(messages.slice(1, 4).map((m) => [m.type, m.id, m.error?.code])).toEqual([
      ['error', null, 'invalid_params'],
      ['error', null, 'invalid_params'],
      ['error', null, 'invalid_params'],
    ]);
    expect(messages[4]).toMatchObject({ type: 'error', id: 7, error: { code: 'invalid_params' } });
  });

  it('checks Origin and Host', async () => {
    const base = `http://127.0.0.1:${open.port}`;
    expect(await upgradeStatus(open.wsUrl, { Origin: base })).toBe(101);
    expect(await upgradeStatus(open.wsUrl, { Origin: `http://localhost:${open.port}` })).toBe(101);
    expect(await upgradeStatus(open.wsUrl, { Origin: 'http://localhost:5173' })).toBe(101); // --allow-origin
    expect(await upgradeStatus(open.wsUrl, { Origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(open.wsUrl, { Origin: `http://127.0.0.1:${open.port + 1}` })).toBe(403);
    expect(await upgradeStatus(open.wsUrl, { Origin: 'null' })).toBe(403);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example
    expect(await upgradeStatus(open.wsUrl, { Host: `evil.example:${open.port}` })).toBe(403);
    expect(await upgradeStatus(`ws://127.0.0.1:${open.port}/other`)).toBe(404);
    const e = await rejection(connectApi(open.wsUrl, { origin: 'https://evil.example' }));
    expect(e.message).toMatch(
      /refused the connection \(403\): origin https:\/\/evil\.example is not allowed/,
    );
  });

  it('requires the token when one is set (header or query), compared in constant time', async () => {
    expect(await upgradeStatus(locked.wsUrl)).toBe(401);
    expect(await upgradeStatus(locked.wsUrl, { Authorization: 'Bearer wrong-token-0123456789' })).toBe(401);
    expect(await upgradeStatus(locked.wsUrl, { Authorization: `Bearer ${TOKEN}` })).toBe(101);
    expect(await upgradeStatus(`${locked.wsUrl}?token=${TOKEN}`)).toBe(101);
    expect(await upgradeStatus(`${locked.wsUrl}?token=${TOKEN}x`)).toBe(401);
    const e = await rejection(connectApi(locked.wsUrl));
    expect(e.code).toBe('unauthorized');
    const client = await connectApi(locked.wsUrl, { token: TOKEN });
    expect((await client.call('server.info', {})).app).toBe('circuit-workbench');
    await client.close();
  });

  it('serves the built UI, with client-side routes, and nothing outside it', async () => {
    const base = `http://127.0.0.1:${open.port}`;
    const index = await get(`${base}/`);
    expect(index).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(index.body).toMatch(/Circuit Workbench/);
    expect((await get(`${base}/assets/app.js`)).type).toBe('text/javascript; charset=utf-8');
    expect((await get(`${base}/traces/12`)).body).toMatch(/Circuit Workbench/);
    expect((await get(`${base}/missing.js`)).status).toBe(404);
    expect((await get(`${base}/../secret.txt`)).status).toBe(404);
    expect((await get(`${base}/%2e%2e/secret.txt`)).status).toBe(404);
    expect((await get(`${base}/..%2fsecret.txt`)).status).toBe(404);
    expect(JSON.parse((await get(`${base}/health`)).body)).toMatchObject({ ok: true });
    const bare = await get(`http://127.0.0.1:${locked.port}/`);
    expect(bare.body).toMatch(/UI is not built/);
  });

  it('sends a Content-Security-Policy whose connect-src is the serving origin and allowed ones (issue 14, item 9)', async () => {
    const base = `http://127.0.0.1:${open.port}`;
    for (const u of [`${base}/`, `${base}/assets/app.js`, `${base}/missing.js`, `${base}/health`]) {
      const { csp } = await get(u);
      expect(csp).toMatch(/frame-ancestors 'none'/);
      const connect = /connect-src ([^;]*)/.exec(csp)?.[1].split(' ');
      expect(connect).toEqual([
        "'self'",
        `ws://127.0.0.1:${open.port}`,
        `wss://127.0.0.1:${open.port}`,
        'http://localhost:5173',
        'ws://localhost:5173',
      ]);
    }
    const bare = await get(`http://127.0.0.1:${locked.port}/`);
    expect(/connect-src ([^;]*)/.exec(bare.csp)?.[1]).toBe(
      `'self' ws://127.0.0.1:${locked.port} wss://127.0.0.1:${locked.port}`,
    );
    expect(bare.csp).not.toMatch(/ wss?:(;| |$)/);
  });

  it('refuses to bind a non-loopback address without a token, and generates one by default', async () => {
    const e = await rejection(startApiServer({ backend: service, host: '0.0.0.0', port: 0, token: '' }));
    expect(e.message).toMatch(/requires a token/);
    const generated = serverToken('0.0.0.0', undefined)!;
    expect(generated).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(serverToken('192.168.1.4', null)).not.toBe(generated);
    expect(serverToken('127.0.0.1', undefined)).toBeNull();
    expect(serverToken('::1', 'given-token-0123456789')).toBe('given-token-0123456789');
  });
});
