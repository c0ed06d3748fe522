/**
 * The real entry chain in a plain Node process, with only the 'electron' module replaced (by
 * module hooks, at the module boundary): out/app/main.mjs (electron/app/main.ts bundled by
 * esbuild) assembles the real backend — store, worker threads, service — registers
 * IPC, opens the window, and shuts down cleanly on quit.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../electron/app/build.ts';
import { API_METHODS } from '../../electron/app/channels.ts';
import { tempDir } from '../store/helpers.ts';
import { ROOT, writeRendererDir } from './helpers.ts';

function runMain(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; lines: unknown[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        path.join(import.meta.dirname, 'entry', 'register.mjs'),
        path.join(ROOT, 'out', 'app', 'main.mjs'),
        ...args,
      ],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      resolve({ code, lines, stderr });
    });
  });
}

describe('out/app/main.mjs → main.ts → app wiring (Electron stubbed)', () => {
  const tmp = tempDir('cw-entry-');
  beforeAll(async () => {
    await buildApp();
  });
  afterAll(() => tmp.cleanup());

  it('starts the backend, serves the API over IPC to the window, and quits cleanly', async () => {
    const data = path.join(tmp.dir, 'library');
    const ui = writeRendererDir(path.join(tmp.dir, 'ui'));
    const r = await runMain(['--data', data, '--ui', ui], { STUB_USER_DATA: path.join(tmp.dir, 'user') });
    expect(r.code, r.stderr).toBe(0);
    const loaded = r.lines.find((l) => (l as { event: string }).event === 'loaded') as Record<
      string,
      unknown
    >;
    expect(loaded, JSON.stringify(r.lines) + r.stderr).toBeDefined();
    expect(loaded.url).toBe('app://renderer/index.html');
    expect(loaded.appName).toBe('Circuit Workbench');
    expect(loaded.channels).toBe(API_METHODS.length + 1);
    expect(loaded.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      preload: path.join(ROOT, 'out', 'app', 'preload.cjs'),
    });
    expect(loaded.info).toMatchObject({ ok: true, result: { app: 'circuit-workbench', dataDir: data } });
    expect(loaded.bad).toMatchObject({ ok: false, error: { code: 'invalid_params', field: 'name' } });
    expect(r.lines.at(-1)).toEqual({ event: 'quit' });
  }, 90_000);
});
