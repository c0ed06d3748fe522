/**
 * Builds the desktop shell's two JavaScript files into out/app/ (esbuild, milliseconds):
 *
 *   out/app/main.mjs      ESM main of the app (bootstrap.ts: registers tsx, loads main.ts)
 *   out/app/preload.cjs   the preload, one CommonJS file (a sandboxed preload cannot import
 *                         modules or TypeScript; only require('electron') is left in it)
 *   out/app/package.json  so `electron out/app` runs the app from the repository
 *
 * Run by `npm start` and `npm run dist` (tsx electron/app/build.ts builds alone).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const OUT_DIR = path.join(ROOT, 'out', 'app');

/** Electron 41's Chromium and Node both run ES2022. */
const TARGET = 'es2022';

export interface BuiltApp {
  main: string;
  preload: string;
  packageJson: string;
}

export async function buildPreload(outfile: string, opts: { minify?: boolean } = {}): Promise<void> {
  await build({
    entryPoints: [path.join(ROOT, 'electron', 'app', 'preload.ts')],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: TARGET,
    external: ['electron'],
    minify: opts.minify ?? false,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

export async function buildMain(outfile: string): Promise<void> {
  await build({
    stdin: {
      contents: "import { boot } from './bootstrap.ts';\nawait boot(import.meta.url);\n",
      resolveDir: path.join(ROOT, 'electron', 'app'),
      sourcefile: 'main-entry.ts',
      loader: 'ts',
    },
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: TARGET,
    packages: 'external',
    external: ['electron'],
    logLevel: 'warning',
  });
}

export async function buildApp(outDir = OUT_DIR): Promise<BuiltApp> {
  fs.mkdirSync(outDir, { recursive: true });
  const main = path.join(outDir, 'main.mjs');
  const preload = path.join(outDir, 'preload.cjs');
  const packageJson = path.join(outDir, 'package.json');
  await Promise.all([buildMain(main), buildPreload(preload)]);
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    description?: string;
  };
  fs.writeFileSync(
    packageJson,
    `${JSON.stringify(
      {
        name: 'circuit-workbench',
        productName: 'Circuit Workbench',
        version: root.version,
        description: root.description ?? '',
        main: 'main.mjs',
        type: 'module',
        private: true,
      },
      null,
      2,
    )}\n`,
  );
  return { main, preload, packageJson };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildApp();
  console.log(`built ${path.relative(ROOT, built.main)}, ${path.relative(ROOT, built.preload)}`);
}
