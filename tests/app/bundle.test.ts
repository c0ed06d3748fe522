/**
 * The built app's JavaScript (electron/app/build.ts → out/app) runs on plain Node, without tsx:
 * the bundles are built into a folder outside the repository whose node_modules holds only
 * package.json's `dependencies` (what electron-builder ships), so neither tsx nor any other
 * development package can be resolved. There the bundled CLI serves the API, registers the demo
 * model on the bundled model-check thread, and traces it on the job runner's bundled worker and
 * trace kind, the demo's weights decoded on the bundled decode threads.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../electron/api/contract.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import { buildApp, ENTRIES, SIBLINGS } from '../../electron/app/build.ts';
import { compilerFingerprint } from '../../electron/engine/onnx/compile-cache.ts';
import { ROOT } from './helpers.ts';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
const DEMO = path.join(ROOT, 'resources', 'models', 'gemma2-demo');

/** A Node environment with no preloaded loader (a --import tsx in NODE_OPTIONS would hide a gap). */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

describe('out/app bundles, on Node without tsx', () => {
  let tmp: string;
  let app: string;
  let files: string[];
  let server: ChildProcess | null = null;
  let api: ApiClient | null = null;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bundle-'));
    app = path.join(tmp, 'app');
    files = (await buildApp(app)).bundles;
    // Only the runtime dependencies, as in the packaged app (their own dependencies resolve from
    // their real folders, as they do there).
    for (const name of Object.keys(pkg.dependencies)) {
      const link = path.join(tmp, 'node_modules', name);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), link, 'dir');
    }
  }, 60_000);

  afterAll(async () => {
    api?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      const t = setTimeout(() => server!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 30_000);

  it('are plain JavaScript: every entry and sibling written, no tsx, no .ts import, only shipped packages', () => {
    const names = files.map((f) => path.basename(f));
    for (const entry of Object.keys(ENTRIES)) expect(names).toContain(`${entry}.mjs`);
    for (const bundle of Object.values(SIBLINGS)) expect(names).toContain(`${bundle}.mjs`);
    const packages = new Set<string>();
    const importElectron: string[] = [];
    for (const f of files) {
      const code = fs.readFileSync(f, 'utf8');
      if (/from\s*["']electron["']/.test(code)) importElectron.push(path.basename(f));
      expect(code, f).not.toMatch(/\btsx\b/);
      expect(code, f).not.toMatch(/(from\s*|import\(\s*)["'][^"']+\.ts["']/);
      expect(code, f).not.toContain('worker-bootstrap'); // the tsx entry of the job workers
      for (const m of code.matchAll(/(?:from\s*|import\(\s*)["']([^."'/][^"']*)["']/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
      }
    }
    // the compiled-graph cache keys on the sources' hash, built in (the sources are not shipped)
    const all = files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    expect(all).toContain(`compilerSourceHash = ${JSON.stringify(compilerFingerprint())}`);
    // worker threads cannot load Electron's module: only the main process's own file imports it
    expect(importElectron).toEqual(['main.mjs']);
    const unshipped = [...packages].filter((p) => p !== 'electron' && !(p in pkg.dependencies));
    expect(unshipped).toEqual([]);
    expect(packages).toContain('onnxruntime-node');
    expect(packages).toContain('better-sqlite3');
  });

  it('cli.mjs runs its help with node alone', () => {
    const r = spawnSync(process.execPath, [path.join(app, 'cli.mjs'), '--help'], {
      cwd: tmp,
      env: plainEnv(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: circuit <command>/);
    expect(r.stdout).toContain('trace');
  });

  it('serves, checks the demo model on the bundled thread and traces it on the bundled job worker', async () => {
    const child = spawn(
      process.execPath,
      [path.join(app, 'cli.mjs'), 'serve', '--port', '0', '--data', path.join(tmp, 'library'), '--json'],
      {
        cwd: tmp,
        // The demo's weights decoded on the bundled decode threads too (any size, not only big ones).
        env: plainEnv({ CIRCUIT_CACHE_DIR: path.join(tmp, 'cache'), CIRCUIT_PARALLEL_DECODE: '1' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    server = child;
    let log = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      log += d;
    });
    const wsUrl = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('{')) resolve((JSON.parse(line) as { ws_url: string }).ws_url);
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${log}`)));
    });
    api = await connectApi(wsUrl);
    const model = await api.call('models.register', {
      checkpointDir: DEMO,
      transcoderDir: path.join(DEMO, 'transcoders', 'clt'),
    });
    expect(model.valid, JSON.stringify(model)).toBe(true);
    const started = await api.call('traces.start', {
      modelId: model.id,
      prompt: 'The capital of state containing Dallas is',
    });
    const t0 = Date.now();
    let trace = await api.call('traces.get', { id: started.id });
    while (trace.status !== 'done' && trace.status !== 'failed' && Date.now() - t0 < 60_000) {
      await new Promise((r) => setTimeout(r, 200));
      trace = await api.call('traces.get', { id: started.id });
    }
    expect(trace.status, `${JSON.stringify(trace.error)}\n${log}`).toBe('done');
    expect(trace.graph?.nFeatures ?? 0).toBeGreaterThan(0);
    expect(trace.views[0]?.nNodes ?? 0).toBeGreaterThan(0);
  }, 90_000);
});
