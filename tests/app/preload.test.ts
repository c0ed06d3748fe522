/**
 * The preload: it exposes exactly the contract (window.circuitApi: call/on/close) and the
 * desktop surface (window.circuitDesktop: onMenuCommand/pickFolder), nothing of ipcRenderer;
 * calls go to their method's channel and come back as results or typed errors; events and menu
 * commands reach listeners without the IPC event. The built bundle (out/app/preload.cjs) is one
 * CommonJS file that requires only 'electron' — what a sandboxed preload may do.
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../electron/api/contract.ts';
import { METHOD_NAMES } from '../../electron/api/schema.ts';
import { buildPreload } from '../../electron/app/build.ts';
import {
  type DesktopBridge,
  EVENT_CHANNEL,
  MENU_CHANNEL,
  methodChannel,
  PICK_FOLDER_CHANNEL,
} from '../../electron/app/channels.ts';
import { createBridges, exposeBridges } from '../../electron/app/preload-bridge.ts';
import { tempDir } from '../store/helpers.ts';

/** ipcRenderer as the preload sees it, recording calls; `reply` answers invokes. */
function fakeIpcRenderer(
  reply: (channel: string, args: unknown[]) => unknown = () => ({ ok: true, result: 'r' }),
) {
  const listeners = new Map<string, Array<(event: unknown, ...args: unknown[]) => void>>();
  const invoked: Array<{ channel: string; args: unknown[] }> = [];
  const ipc = {
    secret: 'the ipcRenderer object',
    async invoke(channel: string, ...args: unknown[]) {
      invoked.push({ channel, args });
      return reply(channel, args);
    },
    on(channel: string, l: (event: unknown, ...args: unknown[]) => void) {
      listeners.set(channel, [...(listeners.get(channel) ?? []), l]);
      return ipc;
    },
    send() {
      throw new Error('the bridge must not use send');
    },
    /** Main → renderer: what webContents.send would deliver (the event's sender is ipcRenderer). */
    emit(channel: string, ...args: unknown[]) {
      for (const l of listeners.get(channel) ?? []) l({ sender: ipc, ports: [] }, ...args);
    },
  };
  return { ipc, invoked, listeners };
}

function fakeContextBridge() {
  const exposed: Record<string, unknown> = {};
  return {
    exposed,
    exposeInMainWorld(key: string, api: unknown) {
      if (key in exposed) throw new Error(`${key} exposed twice`);
      exposed[key] = api;
    },
  };
}

/** Every value reachable from `v` (own properties, function results are not called). */
function reachable(v: unknown, seen = new Set<unknown>()): unknown[] {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return [];
  seen.add(v);
  const out: unknown[] = [v];
  for (const k of Reflect.ownKeys(v as object)) {
    const d = Object.getOwnPropertyDescriptor(v, k);
    if (d && 'value' in d) out.push(...reachable(d.value, seen));
  }
  return out;
}

describe('what the preload exposes', () => {
  const { ipc } = fakeIpcRenderer();
  const cb = fakeContextBridge();
  exposeBridges(cb, ipc);

  it('exposes exactly circuitApi {call, on, close} and circuitDesktop {onMenuCommand, pickFolder}', () => {
    expect(Object.keys(cb.exposed).sort()).toEqual(['circuitApi', 'circuitDesktop']);
    const api = cb.exposed.circuitApi as Record<string, unknown>;
    const desktop = cb.exposed.circuitDesktop as Record<string, unknown>;
    expect(Reflect.ownKeys(api).sort()).toEqual(['call', 'close', 'on']);
    expect(Reflect.ownKeys(desktop).sort()).toEqual(['onMenuCommand', 'pickFolder']);
    for (const f of [...Object.values(api), ...Object.values(desktop)]) expect(typeof f).toBe('function');
    expect(Object.getPrototypeOf(api)).toBe(Object.prototype);
  });

  it('leaks nothing of ipcRenderer: not the object, not its methods', () => {
    const all = reachable(cb.exposed);
    expect(all).not.toContain(ipc);
    for (const f of [ipc.invoke, ipc.on, ipc.send]) expect(all).not.toContain(f);
    expect(JSON.stringify(Object.keys(cb.exposed.circuitApi as object))).not.toMatch(/invoke|send|ipc/i);
  });

  it('returns nothing of ipcRenderer from its functions either', async () => {
    const api = cb.exposed.circuitApi as ApiClient;
    const desktop = cb.exposed.circuitDesktop as DesktopBridge;
    const results = [
      await api.call('projects.list', {}),
      api.on('trace.updated', () => {}),
      desktop.onMenuCommand(() => {}),
      await desktop.pickFolder('checkpoint'),
    ];
    for (const r of results) {
      expect(r).not.toBe(ipc);
      if (typeof r === 'function') expect(r()).toBeUndefined();
    }
  });
});

describe('the bridge', () => {
  it('sends each method to its channel with the params, and returns the result', async () => {
    const f = fakeIpcRenderer((channel) => ({ ok: true, result: { channel } }));
    const { api } = createBridges(f.ipc);
    for (const m of METHOD_NAMES) {
      expect(await api.call(m, {} as never)).toEqual({ channel: methodChannel(m) });
    }
    await api.call('projects.create', { name: 'x' });
    expect(f.invoked.at(-1)).toEqual({ channel: methodChannel('projects.create'), args: [{ name: 'x' }] });
  });

  it('rejects with the typed error the main process returned', async () => {
    const f = fakeIpcRenderer(() => ({
      ok: false,
      error: { code: 'invalid_params', message: 'invalid params: name must be a string', field: 'name' },
    }));
    const { api } = createBridges(f.ipc);
    const e = await api.call('projects.create', { name: 1 as never }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({
      message: 'invalid params: name must be a string',
      code: 'invalid_params',
      field: 'name',
    });
  });

  it('refuses unknown methods without touching IPC, and malformed replies', async () => {
    const f = fakeIpcRenderer(() => 'garbage');
    const { api } = createBridges(f.ipc);
    await expect(api.call('fs.readFile' as never, {} as never)).rejects.toMatchObject({
      code: 'unknown_method',
    });
    await expect(api.call('__proto__' as never, {} as never)).rejects.toMatchObject({
      code: 'unknown_method',
    });
    expect(f.invoked).toEqual([]);
    await expect(api.call('projects.list', {})).rejects.toMatchObject({ code: 'internal' });
  });

  it('delivers contract events to their listeners with the data only', () => {
    const f = fakeIpcRenderer();
    const { api } = createBridges(f.ipc);
    const got: unknown[][] = [];
    const off = api.on('trace.updated', (...args: unknown[]) => got.push(args));
    f.ipc.emit(EVENT_CHANNEL, 'trace.updated', { trace: { id: 1 } });
    f.ipc.emit(EVENT_CHANNEL, 'library.changed', { entity: 'model', id: 1 });
    f.ipc.emit(EVENT_CHANNEL, 'not.an.event', {});
    expect(got).toEqual([[{ trace: { id: 1 } }]]);
    off();
    f.ipc.emit(EVENT_CHANNEL, 'trace.updated', { trace: { id: 2 } });
    expect(got.length).toBe(1);
    expect(() => api.on('bogus' as never, () => {})).toThrow(/unknown event/);
  });

  it('delivers well-formed menu commands only', () => {
    const f = fakeIpcRenderer();
    const { desktop } = createBridges(f.ipc);
    const got: unknown[][] = [];
    desktop.onMenuCommand((...args: unknown[]) => got.push(args));
    f.ipc.emit(MENU_CHANNEL, { command: 'view-subgraph' });
    f.ipc.emit(MENU_CHANNEL, { command: 'show-trace', traceId: 7 });
    f.ipc.emit(MENU_CHANNEL, { command: 'show-trace', traceId: 'x' });
    f.ipc.emit(MENU_CHANNEL, { command: 'rm -rf' });
    f.ipc.emit(MENU_CHANNEL, { command: 'new-project', extra: 1 });
    expect(got).toEqual([[{ command: 'view-subgraph' }], [{ command: 'show-trace', traceId: 7 }]]);
  });

  it('asks the main process for a folder, for a known purpose only', async () => {
    const f = fakeIpcRenderer(() => ({ ok: true, result: '/data/model' }));
    const { desktop } = createBridges(f.ipc);
    expect(await desktop.pickFolder('checkpoint')).toBe('/data/model');
    expect(f.invoked).toEqual([{ channel: PICK_FOLDER_CHANNEL, args: ['checkpoint'] }]);
    await expect(desktop.pickFolder('/etc' as never)).rejects.toMatchObject({ code: 'invalid_params' });
    expect(f.invoked.length).toBe(1);
  });

  it('turns IPC failures into typed errors (uncloneable params, no handler)', async () => {
    const f = fakeIpcRenderer((channel) => {
      if (channel === methodChannel('projects.create')) throw new Error('An object could not be cloned.');
      throw new Error(`Error invoking remote method '${channel}': No handler registered`);
    });
    const { api } = createBridges(f.ipc);
    await expect(api.call('projects.create', { name: 'x' })).rejects.toMatchObject({
      code: 'invalid_params',
    });
    await expect(api.call('projects.list', {})).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('stops after close()', async () => {
    const f = fakeIpcRenderer();
    const { api } = createBridges(f.ipc);
    const got: unknown[] = [];
    api.on('trace.deleted', (d) => got.push(d));
    api.close();
    f.ipc.emit(EVENT_CHANNEL, 'trace.deleted', { traceId: 1, permanent: true });
    expect(got).toEqual([]);
    await expect(api.call('projects.list', {})).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('the built preload bundle', () => {
  const tmp = tempDir('cw-preload-');
  const file = path.join(tmp.dir, 'preload.cjs');
  let code = '';
  beforeAll(async () => {
    await buildPreload(file);
    code = fs.readFileSync(file, 'utf8');
  });
  afterAll(() => tmp.cleanup());

  it('is one CommonJS file that requires nothing but electron', () => {
    const requires = [...code.matchAll(/\brequire\(\s*["'`]([^"'`]+)["'`]\s*\)/g)].map((m) => m[1]);
    expect(requires).toEqual(['electron']);
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    expect(code).not.toMatch(/\bimport\(/);
    expect(code.length).toBeLessThan(30_000);
  });

  it('runs in a sandbox-like context and exposes the two bridges', () => {
    const f = fakeIpcRenderer();
    const cb = fakeContextBridge();
    const sandbox = {
      require: (id: string) => {
        if (id !== 'electron') throw new Error(`a sandboxed preload cannot require ${id}`);
        return { contextBridge: cb, ipcRenderer: f.ipc };
      },
      module: { exports: {} },
      exports: {},
      console,
    };
    vm.runInNewContext(code, sandbox, { filename: 'preload.cjs' });
    expect(Object.keys(cb.exposed).sort()).toEqual(['circuitApi', 'circuitDesktop']);
    expect(Object.keys(cb.exposed.circuitApi as object).sort()).toEqual(['call', 'close', 'on']);
    expect([...f.listeners.keys()].sort()).toEqual([EVENT_CHANNEL, MENU_CHANNEL].sort());
  });
});
