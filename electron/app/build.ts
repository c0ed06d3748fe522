/**
 * Builds the desktop app's JavaScript into out/app/ (esbuild, about a second). The built app
 * runs plain JavaScript: no TypeScript loader (tsx) and no esbuild binary at run time.
 *
 *   main.mjs                the Electron main process (electron/app/main.ts)
 *   cli.mjs                 the `circuit` command (electron/cli/main.ts), for a run without tsx
 *   job-worker.mjs          a job worker thread (electron/jobs/worker-main.ts)
 *   job-<kind>.mjs          the job kinds a worker loads (electron/jobs/kinds/<kind>.ts)
 *   model-check-worker.mjs  the model-check thread (electron/api/model-check-thread.ts)
 *   decode-worker.mjs       a thread of the parallel weight decoder (engine/checkpoint/decode-thread.ts)
 *   chunk-<hash>.mjs        code the entries share (one copy of each module, so one copy of
 *                           its state and classes: `instanceof` holds across entries)
 *   preload.cjs             the preload, one CommonJS file (a sandboxed preload cannot import
 *                           modules; only require('electron') is left in it)
 *   package.json            so `electron out/app` runs the app from the repository
 *
 * Packages stay external (imported from node_modules at run time), and each must be one of
 * package.json's `dependencies`, which electron-builder ships: the native modules
 * (better-sqlite3, onnxruntime-node) and ws, whose optional native add-ons a bundle would lose.
 *
 * The sources name their worker and job-kind files as siblings, `new URL('./x.ts',
 * import.meta.url)`; the bundle rewrites each to the bundled file that replaces it (SIBLINGS),
 * and fails on one it does not know. The sources keep running through tsx unchanged.
 *
 * Run by `npm start` and `npm run dist` (tsx electron/app/build.ts builds alone).
 */
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { compilerFingerprint } from '../engine/onnx/compile-cache.ts';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const OUT_DIR = path.join(ROOT, 'out', 'app');

/** Electron 41's Chromium and Node both run ES2022. */
const TARGET = 'es2022';

/** The bundles' entries: output name (out/app/<name>.mjs) → source, relative to ROOT. */
export const ENTRIES: Readonly<Record<string, string>> = {
  main: 'electron/app/main.ts',
  cli: 'electron/cli/main.ts',
  'job-worker': 'electron/jobs/worker-main.ts',
  'job-trace': 'electron/jobs/kinds/trace.ts',
  'job-reprune': 'electron/jobs/kinds/reprune.ts',
  'job-dashboards': 'electron/jobs/kinds/dashboards.ts',
  'job-intervene': 'electron/jobs/kinds/intervene.ts',
  'model-check-worker': 'electron/api/model-check-thread.ts',
  'decode-worker': 'electron/engine/checkpoint/decode-thread.ts',
};

/** Files the sources start by URL (`new URL(file, import.meta.url)`) → the bundle that replaces each. */
export const SIBLINGS: Readonly<Record<string, string>> = {
  'electron/jobs/worker-bootstrap.mjs': 'job-worker',
  'electron/jobs/kinds/trace.ts': 'job-trace',
  'electron/jobs/kinds/reprune.ts': 'job-reprune',
  'electron/jobs/kinds/dashboards.ts': 'job-dashboards',
  'electron/jobs/kinds/intervene.ts': 'job-intervene',
  'electron/api/model-check-worker.mjs': 'model-check-worker',
  'electron/engine/checkpoint/decode-worker.mjs': 'decode-worker',
};

/** cli.mjs runs the command line (electron/cli/main.ts only exports `main`). */
const CLI_ENTRY = 'process.exitCode = await main(process.argv.slice(2));\n';

export interface BuiltApp {
  main: string;
  preload: string;
  packageJson: string;
  /** Every file written under the output folder but the preload and package.json. */
  bundles: string[];
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

const SIBLING_URL = /new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Our sources as the bundles need them: a sibling file named by URL becomes its bundle's URL
 * (all bundles sit in one folder), and `import.meta.dirname` stays the source file's folder as
 * seen from out/app, two levels under the app's root (main.ts and serve-ui.ts find the root
 * from it). The bundles hold no absolute path of the build machine.
 */
function bundledSources(): Plugin {
  const electronDir = path.join(ROOT, 'electron') + path.sep;
  return {
    name: 'bundled-sources',
    setup(b) {
      b.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => {
        if (!args.path.startsWith(electronDir)) return undefined;
        const source = fs.readFileSync(args.path, 'utf8');
        const loader = args.path.endsWith('.ts') ? 'ts' : 'js';
        if (!source.includes('import.meta')) return { contents: source, loader };
        const dir = path.dirname(args.path);
        const unknown: string[] = [];
        const contents = source
          .replace(SIBLING_URL, (whole, _q: string, file: string) => {
            const rel = path.relative(ROOT, path.resolve(dir, file)).split(path.sep).join('/');
            const bundle = SIBLINGS[rel];
            if (!bundle) {
              unknown.push(rel);
              return whole;
            }
            return `new URL(${JSON.stringify(`./${bundle}.mjs`)}, import.meta.url)`;
          })
          .replace(
            /\bimport\.meta\.dirname\b/g,
            `(import.meta.dirname + ${JSON.stringify(`/${path.relative(OUT_DIR, dir).split(path.sep).join('/')}`)})`,
          );
        if (unknown.length > 0) {
          return {
            errors: unknown.map((rel) => ({
              text: `${rel} is started by URL but has no bundle: add it to ENTRIES and SIBLINGS in electron/app/build.ts`,
            })),
          };
        }
        return { contents, loader };
      });
    },
  };
}

/** The packages the bundles import, by name (node: built-ins and subpaths folded). */
function externalPackages(meta: Metafile): Set<string> {
  const names = new Set<string>();
  for (const out of Object.values(meta.outputs)) {
    for (const imp of out.imports) {
      if (!imp.external || isBuiltin(imp.path)) continue;
      const parts = imp.path.split('/');
      names.add(imp.path.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
    }
  }
  return names;
}

export async function buildBundles(dir: string): Promise<string[]> {
  const outDir = path.resolve(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const cliEntry: Plugin = {
    name: 'cli-entry',
    setup(b) {
      b.onResolve({ filter: /^cli-entry$/ }, () => ({ path: 'cli-entry', namespace: 'cli-entry' }));
      b.onLoad({ filter: /.*/, namespace: 'cli-entry' }, () => ({
        contents: `import { main } from ${JSON.stringify(path.join(ROOT, ENTRIES.cli!))};\n${CLI_ENTRY}`,
        resolveDir: ROOT,
        loader: 'js',
      }));
    },
  };
  const result = await build({
    entryPoints: Object.entries(ENTRIES).map(([out, src]) => ({
      out,
      in: out === 'cli' ? 'cli-entry' : path.join(ROOT, src),
    })),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: TARGET,
    packages: 'external',
    external: ['electron'],
    // the compiled-graph cache keys on the compiler's sources, which the built app lacks
    define: { __COMPILER_SOURCE_HASH__: JSON.stringify(compilerFingerprint()) },
    plugins: [cliEntry, bundledSources()],
    metafile: true,
    absWorkingDir: ROOT,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const undeclared = [...externalPackages(result.metafile)].filter(
    (p) => p !== 'electron' && !(p in pkg.dependencies),
  );
  if (undeclared.length > 0) {
    throw new Error(
      `the bundles import ${undeclared.join(', ')}, which package.json's dependencies lack (the built app would not find them)`,
    );
  }
  const written = Object.keys(result.metafile.outputs).map((f) => path.resolve(ROOT, f));
  // chunks of earlier builds would otherwise pile up (and be packaged)
  for (const f of fs.readdirSync(outDir)) {
    const p = path.join(outDir, f);
    if (/^chunk-.*\.mjs$/.test(f) && !written.includes(p)) fs.rmSync(p, { force: true });
  }
  return written;
}

export async function buildApp(dir = OUT_DIR): Promise<BuiltApp> {
  const outDir = path.resolve(dir);
  fs.mkdirSync(outDir, { recursive: true });
  const preload = path.join(outDir, 'preload.cjs');
  const packageJson = path.join(outDir, 'package.json');
  const [bundles] = await Promise.all([buildBundles(outDir), buildPreload(preload)]);
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
  return { main: path.join(outDir, 'main.mjs'), preload, packageJson, bundles };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildApp();
  console.log(`built ${built.bundles.length} bundles and the preload in ${path.relative(ROOT, OUT_DIR)}`);
}
