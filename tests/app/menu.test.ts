/**
 * Menus and the main process's own file flows: File (new project, open/import graph JSON,
 * register model, export image / graph JSON, data folder), View (compare, subgraph), Help;
 * the demo model registered on first run.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { MenuItemConstructorOptions } from 'electron';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend, registerDemoModel } from '../../electron/app/backend.ts';
import { MENU_CHANNEL } from '../../electron/app/channels.ts';
import { buildMenuTemplate, type MenuActions } from '../../electron/app/menu.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';
import { saveSynthetic, tempDir } from '../store/helpers.ts';
import { syntheticGraph } from '../store/synthetic.ts';
import { type AppHarness, startApp, until } from './helpers.ts';

type Item = MenuItemConstructorOptions;

function find(template: Item[], id: string): Item | undefined {
  for (const item of template) {
    if (item.id === id) return item;
    if (Array.isArray(item.submenu)) {
      const hit = find(item.submenu, id);
      if (hit) return hit;
    }
  }
  return undefined;
}

function labels(template: Item[]): string[] {
  return template.map((i) => (i.label ?? i.role ?? '').replace('&', ''));
}

const click = (item: Item | undefined) => (item!.click as () => void)();

describe('menu template', () => {
  const calls: string[] = [];
  const actions = new Proxy({} as MenuActions, {
    get: (_t, name: string) => () => calls.push(name),
  });

  it('has File, Edit, View and Help (plus the app and Window menus on macOS)', () => {
    const linux = buildMenuTemplate(actions, { platform: 'linux', dev: false, appName: 'Circuit Workbench' });
    expect(labels(linux)).toEqual(['File', 'Edit', 'View', 'Help']);
    const mac = buildMenuTemplate(actions, { platform: 'darwin', dev: false, appName: 'Circuit Workbench' });
    expect(labels(mac)).toEqual(['Circuit Workbench', 'File', 'Edit', 'View', 'windowMenu', 'Help']);
    for (const id of [
      'new-project',
      'open-graph',
      'register-model',
      'export-image',
      'export-graph-json',
      'open-data-folder',
      'view-compare',
      'view-subgraph',
      'server-mode',
    ]) {
      expect(find(linux, id), id).toBeDefined();
      expect(find(mac, id), id).toBeDefined();
    }
  });

  it('wires each item to its action', () => {
    const t = buildMenuTemplate(actions, { platform: 'linux', dev: false, appName: 'X' });
    const ids = [
      'new-project',
      'open-graph',
      'register-model',
      'export-image',
      'export-graph-json',
      'view-compare',
      'view-subgraph',
    ];
    for (const id of ids) click(find(t, id));
    expect(calls).toEqual([
      'newProject',
      'openGraphJson',
      'registerModel',
      'exportImage',
      'exportGraphJson',
      'compare',
      'subgraph',
    ]);
  });

  it('offers reload and developer tools only in development', () => {
    const roles = (dev: boolean) =>
      JSON.stringify(buildMenuTemplate(actions, { platform: 'linux', dev, appName: 'X' }));
    expect(roles(true)).toContain('toggleDevTools');
    expect(roles(false)).not.toContain('toggleDevTools');
    expect(roles(false)).not.toContain('"reload"');
  });
});

describe('menu actions in the app', () => {
  let h: AppHarness;
  let graphFile: string;
  beforeAll(async () => {
    h = await startApp();
    // A graph JSON file to open: a synthetic trace exported by a separate library.
    const other = tempDir('cw-app-graph-');
    const store = Store.open(other.dir);
    const t = saveSynthetic(store, syntheticGraph(3, { nFeatures: 40 }), { prompt: 'Dallas is in' });
    store.close();
    const b = openBackend({
      dataDir: other.dir,
      runJobs: false,
      log: () => {},
      compute: () => new InProcessCompute(),
    });
    const { json } = await b.client.call('graphs.exportJson', { traceId: t.id });
    await b.close();
    graphFile = path.join(h.dir, 'dallas.json');
    fs.writeFileSync(graphFile, json);
    other.cleanup();
  });
  afterAll(async () => {
    await h?.close();
  });

  const menu = () => h.fake.calls.menu as Item[];
  const menuCommands = () =>
    h.win.webContents.sent.filter((s) => s.channel === MENU_CHANNEL).map((s) => s.args[0]);

  it('installs the application menu', () => {
    expect(labels(menu())).toEqual(['File', 'Edit', 'View', 'Help']);
  });

  it('sends UI commands to the window: new project, export image / JSON, compare, subgraph', () => {
    for (const id of ['new-project', 'export-image', 'export-graph-json', 'view-compare', 'view-subgraph'])
      click(find(menu(), id));
    expect(menuCommands()).toEqual([
      { command: 'new-project' },
      { command: 'export-image' },
      { command: 'export-graph-json' },
      { command: 'view-compare' },
      { command: 'view-subgraph' },
    ]);
  });

  it('File › Open Graph JSON… imports the chosen file and tells the UI to show it', async () => {
    h.fake.script.open.push({ canceled: false, filePaths: [graphFile] });
    click(find(menu(), 'open-graph'));
    await until(() => menuCommands().some((c) => (c as { command: string }).command === 'show-trace'));
    const cmd = menuCommands().at(-1) as { command: string; traceId: number };
    const trace = await h.desktop.client!.call('traces.get', { id: cmd.traceId });
    expect(trace).toMatchObject({ source: 'import', prompt: 'Dallas is in', status: 'done' });
    expect(h.fake.calls.openDialogs.at(-1)).toMatchObject({ properties: ['openFile'] });
  });

  it('reports a file that is not graph JSON, and does nothing when cancelled', async () => {
    const bad = path.join(h.dir, 'bad.json');
    fs.writeFileSync(bad, '{"metadata": {}}');
    h.fake.script.open.push({ canceled: false, filePaths: [bad] });
    const before = h.fake.calls.messageBoxes.length;
    click(find(menu(), 'open-graph'));
    await until(() => h.fake.calls.messageBoxes.length > before);
    expect(h.fake.calls.messageBoxes.at(-1)).toMatchObject({
      type: 'error',
      message: 'Cannot import bad.json',
    });
    const sent = h.win.webContents.sent.length;
    h.fake.script.open.push({ canceled: true, filePaths: [] });
    click(find(menu(), 'open-graph'));
    await new Promise((r) => setTimeout(r, 20));
    expect(h.win.webContents.sent.length).toBe(sent);
  });

  it('File › Register Model… asks for both folders, registers, and shows the model', async () => {
    const ckpt = fixturePath('tiny-gemma2');
    const tc = path.join(ckpt, 'transcoders', 'plt');
    h.fake.script.open.push({ canceled: false, filePaths: [ckpt] }, { canceled: false, filePaths: [tc] });
    click(find(menu(), 'register-model'));
    await until(() => menuCommands().some((c) => (c as { command: string }).command === 'show-model'));
    const cmd = menuCommands().at(-1) as { command: string; modelId: number };
    const m = await h.desktop.client!.call('models.get', { id: cmd.modelId });
    expect(m).toMatchObject({ checkpointDir: ckpt, transcoderDir: tc, valid: true });
    const dialogs = h.fake.calls.openDialogs.slice(-2);
    expect(dialogs[0]).toMatchObject({ title: 'Choose the model checkpoint folder' });
    expect(dialogs[1]).toMatchObject({ title: 'Choose the transcoder folder', defaultPath: ckpt });
  });

  it('opens the data folder with the system file manager', async () => {
    click(find(menu(), 'open-data-folder'));
    await until(() => h.fake.calls.openPath.length > 0);
    expect(h.fake.calls.openPath).toEqual([h.dataDir]);
  });
});

describe('the demo model', () => {
  it('is registered on first run (one record per transcoder set), only when it is valid', async () => {
    const tmp = tempDir('cw-app-demo-');
    const b = openBackend({
      dataDir: tmp.dir,
      runJobs: false,
      log: () => {},
      compute: () => new InProcessCompute(),
    });
    try {
      // Not installed: nothing registered, nothing left behind.
      expect(await registerDemoModel(b.client, path.join(tmp.dir, 'missing'))).toEqual([]);
      const broken = path.join(tmp.dir, 'broken');
      fs.mkdirSync(path.join(broken, 'transcoders', 'clt'), { recursive: true });
      fs.writeFileSync(path.join(broken, 'config.json'), '{}');
      expect(await registerDemoModel(b.client, broken)).toEqual([]);
      expect(await b.client.call('models.list', {})).toEqual([]);
      // Installed (tiny-gemma2 has the same layout as resources/models/gemma2-demo).
      const ids = await registerDemoModel(b.client, fixturePath('tiny-gemma2'));
      const models = await b.client.call('models.list', {});
      expect(models.map((m) => m.id).sort()).toEqual([...ids].sort());
      expect(models.length).toBeGreaterThan(0);
      expect(models.every((m) => m.valid && m.name.startsWith('gemma2-demo ('))).toBe(true);
      // Not again once the library has models.
      expect(await registerDemoModel(b.client, fixturePath('tiny-gemma2'))).toEqual([]);
    } finally {
      await b.close();
      tmp.cleanup();
    }
  });
});
