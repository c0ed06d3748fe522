/**
 * A DesktopApp on fake Electron modules and the real backend (Store + WorkbenchService, with
 * in-process compute instead of worker threads) in a temporary data folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DesktopApp, type DesktopAppOptions } from '../../electron/app/app.ts';
import { openBackend } from '../../electron/app/backend.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { tempDir } from '../store/helpers.ts';
import { createFakeElectron, type FakeBrowserWindow, type FakeElectron } from './fake-electron.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface AppHarness {
  fake: FakeElectron;
  desktop: DesktopApp;
  dir: string;
  dataDir: string;
  win: FakeBrowserWindow;
  logs: string[];
  close(): Promise<void>;
}

/** A minimal built UI: index.html and one asset. */
export function writeRendererDir(dir: string): string {
  fs.mkdirSync(path.join(dir, 'assets'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'index.html'),
    '<!doctype html><script type="module" src="./assets/app.js"></script>',
  );
  fs.writeFileSync(path.join(dir, 'assets', 'app.js'), 'console.log("ui");');
  return dir;
}

export async function startApp(
  o: { prepare?: (f: FakeElectron) => void; options?: Partial<DesktopAppOptions> } = {},
): Promise<AppHarness> {
  const fake = createFakeElectron();
  const tmp = tempDir('cw-app-');
  fake.app.userData = path.join(tmp.dir, 'user-data');
  const dataDir = path.join(tmp.dir, 'library');
  const logs: string[] = [];
  const desktop = new DesktopApp(fake.electron, {
    appRoot: tmp.dir,
    argv: ['--data', dataDir],
    env: {},
    platform: 'linux',
    resourcesPath: path.join(tmp.dir, 'resources'),
    versions: { electron: '41.0.0', chrome: '140.0.0', node: '24.0.0' },
    preloadPath: path.join(ROOT, 'out', 'app', 'preload.cjs'),
    rendererDir: writeRendererDir(path.join(tmp.dir, 'renderer')),
    openBackend: (b) =>
      openBackend({ ...b, compute: () => new InProcessCompute({ cacheRoot: path.join(tmp.dir, 'cache') }) }),
    log: (line) => logs.push(line),
    ...o.options,
  });
  o.prepare?.(fake);
  if (!desktop.prepare()) throw new Error('prepare() refused to start');
  fake.app.makeReady();
  await desktop.start();
  const win = (fake.electron.BrowserWindow as unknown as typeof FakeBrowserWindow).all[0]!;
  return {
    fake,
    desktop,
    dir: tmp.dir,
    dataDir,
    win,
    logs,
    async close() {
      await desktop.shutdown();
      tmp.cleanup();
    },
  };
}

/** Waits until `f` holds (polling), for effects of fire-and-forget menu actions. */
export async function until(f: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
