/**
 * `npm start`: opens the desktop app from the repository. Builds what it runs (the UI with Vite
 * when renderer/dist is missing, out/app with esbuild), checks that the Electron binary is
 * installed and that the native SQLite module loads in Electron, then runs `electron out/app`
 * with the arguments given (e.g. `npm start -- --data /path/to/library`).
 *
 * Where the Electron binary is not installed (machines without internet install the package
 * with ELECTRON_SKIP_BINARY_DOWNLOAD=1), it says so and offers server mode instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { buildApp, OUT_DIR, ROOT } from './build.ts';

export type ElectronBinary = { ok: true; path: string } | { ok: false; reason: string };

/** Where the `electron` package says its binary is, and whether it is really there. */
export function findElectronBinary(
  requireFrom: (id: string) => unknown = createRequire(import.meta.url),
  exists: (p: string) => boolean = fs.existsSync,
): ElectronBinary {
  let p: unknown;
  try {
    p = requireFrom('electron');
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/Cannot find module 'electron'/.test(message)) {
      return { ok: false, reason: 'the electron package is not installed (run npm install)' };
    }
    return {
      ok: false,
      reason:
        'the Electron binary was not downloaded (the package was installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1)',
    };
  }
  if (typeof p !== 'string' || !exists(p)) {
    return { ok: false, reason: `the Electron binary is missing (${String(p)})` };
  }
  return { ok: true, path: p };
}

export function serverModeMessage(reason: string): string {
  return [
    `The desktop app cannot open here: ${reason}.`,
    '',
    'To get the Electron binary (needs internet access to its release downloads):',
    '    node node_modules/electron/install.js',
    '',
    'Or use server mode — the same workbench in your browser, no Electron needed:',
    '    npm run build:ui && npm run circuit -- serve',
    '    then open http://127.0.0.1:7411/',
  ].join('\n');
}

/** Asks on a terminal whether to start server mode now; false without a terminal. */
async function askServerMode(): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) return false;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question('Start server mode now? [y/N] ');
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env });
  return r.status ?? 1;
}

export function ensureUiBuilt(): void {
  if (fs.existsSync(path.join(ROOT, 'renderer', 'dist', 'index.html'))) return;
  console.log('Building the UI (renderer/dist)…');
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  if (run(process.execPath, [vite, 'build', '--logLevel', 'warn']) !== 0) {
    throw new Error('the UI build failed (npm run build:ui)');
  }
}

/** Whether better-sqlite3 loads in Electron's Node (its ABI differs from the system Node's). */
export function nativeModulesLoadInElectron(electron: string): { ok: boolean; detail: string } {
  const r = spawnSync(electron, ['-e', "require('better-sqlite3')(':memory:').close()"], {
    cwd: ROOT,
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { ok: r.status === 0, detail: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

async function main(args: string[]): Promise<number> {
  const electron = findElectronBinary();
  if (!electron.ok) {
    console.error(serverModeMessage(electron.reason));
    if (await askServerMode()) {
      ensureUiBuilt();
      return run(process.execPath, [path.join(ROOT, 'bin', 'circuit.mjs'), 'serve', ...args]);
    }
    return 1;
  }
  ensureUiBuilt();
  await buildApp();
  const native = nativeModulesLoadInElectron(electron.path);
  if (!native.ok) {
    console.error(
      [
        'better-sqlite3 does not load in Electron (it is built for the system Node.js, whose ABI differs):',
        `    ${native.detail.split('\n').find((l) => l.trim()) ?? ''}`,
        'Rebuild it for Electron (downloads Electron headers or a prebuilt binary):',
        '    npx electron-builder install-app-deps',
        'and, before using the CLI or running the tests again, rebuild it for Node.js:',
        '    npm rebuild better-sqlite3',
      ].join('\n'),
    );
    return 1;
  }
  const child = spawn(electron.path, [OUT_DIR, ...args], { cwd: ROOT, stdio: 'inherit' });
  return new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
