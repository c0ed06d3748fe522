/**
 * `npm run dist`: the installers. Builds the UI (Vite) and the app's JavaScript bundles in
 * out/app (esbuild, build.ts), then runs electron-builder with electron-builder.yml; extra
 * arguments go to electron-builder (e.g. `npm run dist -- --linux AppImage`, `--mac`, `--win`).
 * Build each platform's installers on that platform: the native modules are the build machine's.
 *
 * electron-builder downloads Electron and rebuilds the native modules for Electron's ABI in
 * node_modules (needs internet). Afterwards better-sqlite3 is rebuilt for Node.js again, so the
 * CLI and the tests keep working.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp, ROOT } from './build.ts';

function run(cmd: string, args: string[]): number {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status ?? 1;
}

async function main(args: string[]): Promise<number> {
  const vite = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  if (run(process.execPath, [vite, 'build', '--logLevel', 'warn']) !== 0) return 1;
  await buildApp();
  const builder = path.join(ROOT, 'node_modules', 'electron-builder', 'cli.js');
  let code: number;
  try {
    code = run(process.execPath, [
      builder,
      '--config',
      'electron-builder.yml',
      '--publish',
      'never',
      ...args,
    ]);
  } finally {
    console.log('Rebuilding better-sqlite3 for Node.js (the CLI and the tests use it)…');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    if (run(npm, ['rebuild', 'better-sqlite3']) !== 0) {
      console.error('`npm rebuild better-sqlite3` failed: run it before using the CLI or the tests.');
    }
  }
  return code;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
