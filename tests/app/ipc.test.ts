/**
 * The API over IPC, main side: every contract method has its channel; params are validated by
 * the contract's schema and rejected with typed errors; only the app's own page may call; paths
 * only from the main process's dialogs; events reach the window.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, ApiEvents, EventName, MethodName, Params } from '../../electron/api/contract.ts';
import { METHOD_NAMES } from '../../electron/api/schema.ts';
import {
  API_EVENTS,
  API_METHODS,
  EVENT_CHANNEL,
  type IpcReply,
  methodChannel,
  PICK_FOLDER_CHANNEL,
} from '../../electron/app/channels.ts';
import type { IpcMain, IpcMainInvokeEvent } from '../../electron/app/electron-types.ts';
import { forwardApiEvents, handleApiCall, PathGrants, registerApiIpc } from '../../electron/app/ipc.ts';
import { FakeFrame, FakeIpcMain, FakeWebContents, fromWindow } from './fake-electron.ts';
import { type AppHarness, startApp } from './helpers.ts';

/** One valid params object per method; typed, so a new contract method must be added here. */
const SAMPLE: { [M in MethodName]: Params<M> } = {
  'server.info': {},
  'projects.list': {},
  'projects.create': { name: 'p', description: 'd' },
  'projects.update': { id: 1, name: 'q' },
  'projects.delete': { id: 1 },
  'models.list': {},
  'models.get': { id: 1 },
  'models.register': { checkpointDir: '/granted/ckpt', transcoderDir: '/granted/tc', name: 'm' },
  'models.validate': { id: 1 },
  'models.rename': { id: 1, name: 'n' },
  'models.delete': { id: 1 },
  'models.transcoderSets': {},
  'models.tokens': { modelId: 1, query: 'Aus' },
  'traces.start': { modelId: 1, prompt: 'The capital of Texas is', settings: { nodeThreshold: 0.5 } },
  'traces.get': { id: 1 },
  'traces.list': { query: 'x', limit: 10 },
  'traces.cancel': { id: 1 },
  'traces.retrace': { id: 1, settings: { edgeThreshold: 0.9 } },
  'traces.delete': { id: 1, permanent: false },
  'traces.restore': { id: 1 },
  'traces.duplicate': { id: 1, projectId: 2 },
  'traces.update': { id: 1, notes: 'n' },
  'traces.tag': { id: 1, add: ['a'] },
  'traces.tags': {},
  'graphs.view': { traceId: 1 },
  'graphs.prune': { traceId: 1, nodeThreshold: 0.5, edgeThreshold: 0.9 },
  'graphs.views': { traceId: 1 },
  'graphs.exportJson': { traceId: 1 },
  'graphs.importJson': { json: '{}' },
  'graphs.diff': { a: { traceId: 1 }, b: { traceId: 2 } },
  'graphs.nodeIds': { traceId: 1 },
  'features.get': { transcoderSetId: 1, layer: 0, index: 3 },
  'features.setLabel': { transcoderSetId: 1, layer: 0, index: 3, label: 'x' },
  'features.search': { transcoderSetId: 1, query: 'x' },
  'features.putDashboards': { transcoderSetId: 1, records: [] },
  'features.computeDashboards': { transcoderSetId: 1 },
  'features.dashboardsStatus': { transcoderSetId: 1 },
  'features.cancelDashboards': { transcoderSetId: 1 },
  'interventions.start': { traceId: 1, edits: [{ layer: 0, feature: 3, position: 2, mode: 'ablate' }] },
  'interventions.list': { traceId: 1 },
  'interventions.get': { id: 1 },
  'interventions.cancel': { id: 1 },
  'interventions.delete': { id: 1 },
  'annotations.get': { traceId: 1 },
  'annotations.update': { traceId: 1, pinned: ['1_2_3'], labels: { E_5_0: 'five' } },
};

/** A client that records what reaches it. */
function recordingClient() {
  const calls: Array<{ method: string; params: unknown }> = [];
  const listeners = new Map<string, Set<(d: unknown) => void>>();
  const client: ApiClient = {
    async call(method, params) {
      calls.push({ method, params });
      return { echoed: method } as never;
    },
    on<E extends EventName>(e: E, l: (d: ApiEvents[E]) => void) {
      const set = listeners.get(e) ?? new Set();
      listeners.set(e, set);
      set.add(l as (d: unknown) => void);
      return () => set.delete(l as (d: unknown) => void);
    },
    close() {},
  };
  const emit = (e: EventName, d: unknown) => {
    for (const l of listeners.get(e) ?? []) l(d);
  };
  return { client, calls, emit, listeners };
}

function trustedPage() {
  const wc = new FakeWebContents();
  wc.url = 'app://renderer/index.html';
  return wc;
}

const asEvent = (e: unknown) => e as IpcMainInvokeEvent;

describe('IPC registration and dispatch (recording client)', () => {
  const page = trustedPage();
  const grants = new PathGrants();
  grants.grant(page.id, '/granted/ckpt');
  grants.grant(page.id, '/granted/tc');
  const rec = recordingClient();
  const ipcMain = new FakeIpcMain();
  const trusted = new Set([page.id]);
  const unregister = registerApiIpc(ipcMain as unknown as IpcMain, {
    client: rec.client,
    grants,
    isTrustedSender: (e) => trusted.has(e.sender.id) && e.senderFrame?.url === 'app://renderer/index.html',
  });
  const from = { sender: page, senderFrame: page.mainFrame };

  it('lists exactly the contract: the same methods as the schema, every event', () => {
    expect([...API_METHODS].sort()).toEqual([...METHOD_NAMES].sort());
    expect(new Set(API_EVENTS)).toEqual(
      new Set([
        'trace.progress',
        'trace.updated',
        'trace.deleted',
        'intervention.progress',
        'intervention.updated',
        'dashboards.updated',
        'library.changed',
      ]),
    );
  });

  it('registers one handler per API method, and no other', () => {
    expect([...ipcMain.handlers.keys()].sort()).toEqual(METHOD_NAMES.map((m) => methodChannel(m)).sort());
  });

  it('routes every method to the backend with its validated params', async () => {
    for (const method of METHOD_NAMES) {
      rec.calls.length = 0;
      const reply = (await ipcMain.invoke(methodChannel(method), from, SAMPLE[method])) as IpcReply;
      expect(reply, method).toEqual({ ok: true, result: { echoed: method } });
      expect(rec.calls, method).toEqual([{ method, params: SAMPLE[method] }]);
    }
  });

  it('absent params count as {} (methods without params)', async () => {
    expect(await ipcMain.invoke(methodChannel('projects.list'), from)).toEqual({
      ok: true,
      result: { echoed: 'projects.list' },
    });
  });

  it('rejects invalid params with typed errors before the backend sees them', async () => {
    rec.calls.length = 0;
    const cases: Array<[MethodName, unknown[], { code: string; field?: string }]> = [
      ['projects.create', [{ name: 42 }], { code: 'invalid_params', field: 'name' }],
      ['projects.create', [{ name: '   ' }], { code: 'invalid_params', field: 'name' }],
      ['projects.create', [{ name: 'ok', extra: 1 }], { code: 'invalid_params', field: 'extra' }],
      ['traces.get', [{ id: -1 }], { code: 'invalid_params', field: 'id' }],
      ['traces.get', [{ id: 1.5 }], { code: 'invalid_params', field: 'id' }],
      ['traces.list', [{ limit: 0 }], { code: 'invalid_params', field: 'limit' }],
      [
        'traces.start',
        [{ modelId: 1, settings: { nodeThreshold: 2 } }],
        {
          code: 'invalid_params',
          field: 'settings.nodeThreshold',
        },
      ],
      [
        'annotations.update',
        [{ traceId: 1, pinned: ['../etc'] }],
        { code: 'invalid_params', field: 'pinned[0]' },
      ],
      ['graphs.view', ['not an object'], { code: 'invalid_params' }],
      ['graphs.view', [{ traceId: 1 }, { second: true }], { code: 'invalid_params' }],
      ['projects.list', [[1]], { code: 'invalid_params' }],
    ];
    for (const [method, args, expected] of cases) {
      const reply = (await ipcMain.invoke(methodChannel(method), from, ...args)) as IpcReply;
      expect(reply.ok, `${method} ${JSON.stringify(args)}`).toBe(false);
      if (!reply.ok) {
        expect(reply.error, `${method} ${JSON.stringify(args)}`).toMatchObject(expected);
        expect(typeof reply.error.message).toBe('string');
      }
    }
    expect(rec.calls).toEqual([]);
  });

  it('refuses calls that do not come from the app page (other origin, subframe, unknown window)', async () => {
    rec.calls.length = 0;
    const remote = new FakeWebContents();
    remote.url = 'https://example.com/';
    const senders = [
      { sender: remote, senderFrame: remote.mainFrame },
      { sender: page, senderFrame: null },
      { sender: page, senderFrame: new FakeFrame(page, null, 'file:///etc/passwd') },
    ];
    for (const s of senders) {
      const reply = (await ipcMain.invoke(methodChannel('projects.list'), s, {})) as IpcReply;
      expect(reply).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    }
    expect(rec.calls).toEqual([]);
  });

  it('accepts model folders only when the main process granted them to this page', async () => {
    rec.calls.length = 0;
    const typed = (await ipcMain.invoke(methodChannel('models.register'), from, {
      checkpointDir: '/home/me/typed',
      transcoderDir: '/granted/tc',
    })) as IpcReply;
    expect(typed).toMatchObject({ ok: false, error: { code: 'unauthorized', field: 'checkpointDir' } });
    const otherPage = trustedPage();
    trusted.add(otherPage.id);
    const notTheirs = (await ipcMain.invoke(
      methodChannel('models.register'),
      { sender: otherPage, senderFrame: otherPage.mainFrame },
      { checkpointDir: '/granted/ckpt', transcoderDir: '/granted/tc' },
    )) as IpcReply;
    expect(notTheirs).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(rec.calls).toEqual([]);
    const ok = (await ipcMain.invoke(methodChannel('models.register'), from, {
      checkpointDir: '/granted/ckpt/',
      transcoderDir: '/granted/x/../tc',
    })) as IpcReply;
    expect(ok.ok).toBe(true);
  });

  it('turns backend failures into typed error envelopes', async () => {
    const failing: ApiClient = {
      ...rec.client,
      call: async () => {
        throw new Error('boom');
      },
    };
    const reply = await handleApiCall('projects.list', asEvent(from), [{}], {
      client: failing,
      grants,
      isTrustedSender: () => true,
    });
    expect(reply).toEqual({ ok: false, error: { code: 'internal', message: 'internal error: boom' } });
  });

  it('forwards every contract event to live windows only', () => {
    const live = new FakeWebContents();
    const dead = new FakeWebContents();
    dead.destroyed = true;
    const off = forwardApiEvents(rec.client, () => [live, dead]);
    for (const e of API_EVENTS) expect(rec.listeners.get(e)?.size, e).toBe(1);
    rec.emit('library.changed', { entity: 'project', id: 3 });
    rec.emit('trace.deleted', { traceId: 4, permanent: true });
    expect(live.sent).toEqual([
      { channel: EVENT_CHANNEL, args: ['library.changed', { entity: 'project', id: 3 }] },
      { channel: EVENT_CHANNEL, args: ['trace.deleted', { traceId: 4, permanent: true }] },
    ]);
    expect(dead.sent).toEqual([]);
    off();
    for (const e of API_EVENTS) expect(rec.listeners.get(e)?.size, e).toBe(0);
  });

  it('removes its handlers', () => {
    unregister();
    expect(ipcMain.handlers.size).toBe(0);
  });
});

describe('IPC against the real backend (DesktopApp on fake Electron modules)', () => {
  let h: AppHarness;
  beforeAll(async () => {
    h = await startApp();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('has every method and the folder picker registered', () => {
    expect([...h.fake.ipcMain.handlers.keys()].sort()).toEqual(
      [...METHOD_NAMES.map((m) => methodChannel(m)), PICK_FOLDER_CHANNEL].sort(),
    );
  });

  it('creates and lists projects over IPC, and the window receives the event', async () => {
    const from = fromWindow(h.win);
    const created = (await h.fake.ipcMain.invoke(methodChannel('projects.create'), from, {
      name: 'Over IPC',
    })) as IpcReply;
    expect(created).toMatchObject({ ok: true, result: { name: 'Over IPC' } });
    const listed = (await h.fake.ipcMain.invoke(methodChannel('projects.list'), from, {})) as IpcReply;
    expect(listed.ok && (listed.result as Array<{ name: string }>).map((p) => p.name)).toContain('Over IPC');
    const id = created.ok ? (created.result as { id: number }).id : -1;
    expect(h.win.webContents.sent).toContainEqual({
      channel: EVENT_CHANNEL,
      args: ['library.changed', { entity: 'project', id }],
    });
    const info = (await h.fake.ipcMain.invoke(methodChannel('server.info'), from, {})) as IpcReply;
    expect(info).toMatchObject({ ok: true, result: { app: 'circuit-workbench', dataDir: h.dataDir } });
  });

  it("maps the backend's own errors to typed codes", async () => {
    const from = fromWindow(h.win);
    expect(await h.fake.ipcMain.invoke(methodChannel('traces.get'), from, { id: 999 })).toMatchObject({
      ok: false,
      error: { code: 'not_found' },
    });
    expect(
      await h.fake.ipcMain.invoke(methodChannel('graphs.importJson'), from, { json: '{"metadata": {}}' }),
    ).toMatchObject({ ok: false, error: { code: 'invalid_params' } });
  });

  it('rejects typed-in folders, accepts the ones its own folder dialog returned', async () => {
    const from = fromWindow(h.win);
    const ckpt = path.join(h.dir, 'ckpt');
    const tc = path.join(h.dir, 'tc');
    fs.mkdirSync(ckpt);
    fs.mkdirSync(tc);
    const typed = await h.fake.ipcMain.invoke(methodChannel('models.register'), from, {
      checkpointDir: ckpt,
      transcoderDir: tc,
    });
    expect(typed).toMatchObject({ ok: false, error: { code: 'unauthorized', field: 'checkpointDir' } });

    h.fake.script.open.push({ canceled: false, filePaths: [ckpt] }, { canceled: false, filePaths: [tc] });
    expect(await h.fake.ipcMain.invoke(PICK_FOLDER_CHANNEL, from, 'checkpoint')).toEqual({
      ok: true,
      result: ckpt,
    });
    expect(await h.fake.ipcMain.invoke(PICK_FOLDER_CHANNEL, from, 'transcoders')).toEqual({
      ok: true,
      result: tc,
    });
    expect(h.fake.calls.openDialogs.at(-1)).toMatchObject({
      properties: ['openDirectory', 'dontAddToRecent'],
    });
    const ok = (await h.fake.ipcMain.invoke(methodChannel('models.register'), from, {
      checkpointDir: ckpt,
      transcoderDir: tc,
    })) as IpcReply;
    // Registered (empty folders: invalid, with the reasons).
    expect(ok).toMatchObject({ ok: true, result: { checkpointDir: ckpt, valid: false } });

    h.fake.script.open.push({ canceled: true, filePaths: [] });
    expect(await h.fake.ipcMain.invoke(PICK_FOLDER_CHANNEL, from, 'checkpoint')).toEqual({
      ok: true,
      result: null,
    });
    expect(await h.fake.ipcMain.invoke(PICK_FOLDER_CHANNEL, from, '/etc')).toMatchObject({
      ok: false,
      error: { code: 'invalid_params', field: 'purpose' },
    });
  });

  it('refuses IPC from a subframe or a page that is not the app', async () => {
    const sub = {
      sender: h.win.webContents,
      senderFrame: new FakeFrame(h.win.webContents, h.win.webContents.mainFrame),
    };
    expect(await h.fake.ipcMain.invoke(methodChannel('projects.list'), sub, {})).toMatchObject({
      ok: false,
      error: { code: 'unauthorized' },
    });
    const stranger = new FakeWebContents();
    stranger.url = 'app://renderer/index.html';
    expect(
      await h.fake.ipcMain.invoke(
        methodChannel('projects.list'),
        { sender: stranger, senderFrame: stranger.mainFrame },
        {},
      ),
    ).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(await h.fake.ipcMain.invoke(PICK_FOLDER_CHANNEL, sub, 'checkpoint')).toMatchObject({
      ok: false,
      error: { code: 'unauthorized' },
    });
  });
});
