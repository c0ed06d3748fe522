/**
 * Packaging and start-up, without Electron's binary and without electron-builder's downloads:
 * electron-builder.yml (targets, the demo model as an extra resource, native modules unpacked
 * from asar, only bundles and the built UI packaged, valid against electron-builder's own
 * schema), the package.json scripts and dependencies, the esbuild step (bundle.test.ts runs the
 * bundles), `npm start`'s fallback to server mode, and the rule that only the thin entries
 * import 'electron'.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { buildApp } from '../../electron/app/build.ts';
import { findElectronBinary, serverModeMessage } from '../../electron/app/launch.ts';
import { tempDir } from '../store/helpers.ts';
import { ROOT } from './helpers.ts';

const require = createRequire(import.meta.url);
const builderRequire = createRequire(require.resolve('app-builder-lib'));

interface BuilderConfig {
  appId: string;
  productName: string;
  directories: { output: string };
  extraMetadata: { main: string };
  files: string[];
  asar: boolean;
  asarUnpack: string[];
  extraResources: Array<{ from: string; to: string; filter: string[] }>;
  npmRebuild: boolean;
  linux: { target: string[]; category: string; maintainer: string; files: string[] };
  mac: { target: string[]; files: string[] };
  win: { target: string[]; files: string[] };
  nsis: Record<string, unknown>;
  electronFuses: Record<string, boolean>;
}

const configText = fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8');
const config = YAML.parse(configText) as BuilderConfig;
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  main?: string;
};

describe('electron-builder.yml', () => {
  it('builds Linux AppImage and deb, macOS dmg, Windows nsis', () => {
    expect(config.linux.target).toEqual(['AppImage', 'deb']);
    expect(config.mac.target).toEqual(['dmg']);
    expect(config.win.target).toEqual(['nsis']);
    expect(config.linux.maintainer).toMatch(/<.+@.+>/); // deb needs a maintainer address
    expect(config.productName).toBe('Circuit Workbench');
    expect(config.directories.output.startsWith('out/')).toBe(true); // ignored by git
  });

  it('ships the demo model as an extra resource', () => {
    expect(config.extraResources).toContainEqual({
      from: 'resources/models/gemma2-demo',
      to: 'models/gemma2-demo',
      filter: ['**/*'],
    });
    expect(fs.existsSync(path.join(ROOT, 'resources/models/gemma2-demo'))).toBe(true);
  });

  it('unpacks the native modules from asar, and rebuilds for Electron at packaging time', () => {
    expect(config.asar).toBe(true);
    // no esbuild binary: the app runs bundles, not TypeScript
    expect(config.asarUnpack).toEqual([
      '**/node_modules/better-sqlite3/**',
      '**/node_modules/onnxruntime-node/**',
      '**/*.node',
    ]);
    const { minimatch } = builderRequire('minimatch') as {
      minimatch: (p: string, pattern: string, o?: object) => boolean;
    };
    const unpacked = (p: string) => config.asarUnpack.some((g) => minimatch(p, g, { dot: true }));
    for (const p of [
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/better-sqlite3/lib/database.js',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so',
    ]) {
      expect(unpacked(p), p).toBe(true);
    }
    for (const p of ['out/app/main.mjs', 'out/app/job-worker.mjs', 'renderer/dist/index.html']) {
      expect(unpacked(p), p).toBe(false);
    }
    expect(config.npmRebuild).toBe(true);
    // Each platform keeps its own onnxruntime binaries only; a platform's `files` replaces the
    // top-level list, so it must repeat it.
    const ort = (others: string) => `!**/node_modules/onnxruntime-node/bin/napi-v*/{${others}}/**`;
    expect(config.linux.files).toEqual([...config.files, ort('darwin,win32')]);
    expect(config.mac.files).toEqual([...config.files, ort('linux,win32')]);
    expect(config.win.files).toEqual([...config.files, ort('darwin,linux')]);
  });

  it('packages the bundles and the built UI, not the TypeScript sources; main is the bundled main', () => {
    expect(config.extraMetadata.main).toBe('out/app/main.mjs');
    expect(config.files).toEqual([
      'package.json',
      'out/app/**',
      'renderer/dist/**',
      '!**/*.map',
      '!**/*.d.ts',
    ]);
  });

  it('flips the fuses the security checklist asks for', () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
  });

  it("is valid against electron-builder's own configuration schema", () => {
    const { validateSchema } = builderRequire('./util/config/schemaValidator.js') as {
      validateSchema: (schema: unknown, data: unknown, o?: object) => void;
    };
    const scheme = JSON.parse(fs.readFileSync(builderRequire.resolve('../scheme.json'), 'utf8'));
    expect(() => validateSchema(scheme, config)).not.toThrow();
    expect(() => validateSchema(scheme, { ...config, asarUnpak: [] })).toThrow(/asarUnpak/);
  }, 60_000);
});

describe('package.json', () => {
  it('has the start and dist scripts, running files that exist', () => {
    expect(pkg.scripts.start).toBe('tsx electron/app/launch.ts');
    expect(pkg.scripts.dist).toBe('tsx electron/app/dist.ts');
    for (const s of [pkg.scripts.start, pkg.scripts.dist]) {
      expect(fs.existsSync(path.join(ROOT, s.split(' ')[1]!))).toBe(true);
    }
  });

  it('ships only what the bundles import: the build tools, tsx and the UI libraries are devDependencies', () => {
    // electron-builder packages `dependencies`; Vite bundles the UI libraries into renderer/dist
    for (const d of [
      'electron',
      'electron-builder',
      'esbuild',
      'tsx',
      'vue',
      'pinia',
      'sigma',
      'graphology',
    ]) {
      expect(pkg.devDependencies[d], d).toBeDefined();
      expect(pkg.dependencies[d], d).toBeUndefined();
    }
    for (const d of ['better-sqlite3', 'onnxruntime-node', 'ws'])
      expect(pkg.dependencies[d], d).toBeDefined();
  });
});

describe('the esbuild step', () => {
  const tmp = tempDir('cw-build-');
  let built: Awaited<ReturnType<typeof buildApp>>;
  beforeAll(async () => {
    built = await buildApp(tmp.dir);
  });
  afterAll(() => tmp.cleanup());

  it('writes an ESM main bundle that imports electron and no TypeScript, and an app package.json', () => {
    const main = fs.readFileSync(built.main, 'utf8');
    expect(main).toMatch(/from "electron"/);
    expect(main).not.toContain('tsx');
    expect(main).not.toMatch(/\.ts"/);
    expect(main).not.toMatch(/require\(/);
    const appPkg = JSON.parse(fs.readFileSync(built.packageJson, 'utf8'));
    expect(appPkg).toMatchObject({ main: 'main.mjs', type: 'module', productName: 'Circuit Workbench' });
    expect(fs.existsSync(built.preload)).toBe(true);
  });
});

describe('npm start', () => {
  it('finds the Electron binary, or says why not', () => {
    expect(
      findElectronBinary(
        () => '/usr/lib/electron/electron',
        () => true,
      ),
    ).toEqual({
      ok: true,
      path: '/usr/lib/electron/electron',
    });
    const skipped = findElectronBinary(() => {
      throw new Error(
        'Electron failed to install correctly, please delete node_modules/electron and try installing again',
      );
    });
    expect(skipped).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ELECTRON_SKIP_BINARY_DOWNLOAD/),
    });
    expect(
      findElectronBinary(
        () => '/gone/electron',
        () => false,
      ),
    ).toMatchObject({ ok: false });
    const msg = serverModeMessage('the Electron binary was not downloaded');
    expect(msg).toContain('node node_modules/electron/install.js');
    expect(msg).toContain('npm run circuit -- serve');
  });

  it('without the binary (as on this machine), says so plainly and offers server mode', () => {
    if (findElectronBinary().ok) return; // a machine with Electron installed would open the app
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'electron/app/launch.ts'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/The desktop app cannot open here: .*Electron/);
    expect(r.stderr).toContain('server mode');
    expect(r.stderr).toContain('npm run circuit -- serve');
  }, 60_000);
});

describe('module boundary', () => {
  const appDir = path.join(ROOT, 'electron', 'app');
  const runtimeImportsElectron = (file: string) => {
    const code = fs
      .readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    return (
      /^\s*import\s+(?!type\b)[^;]*from\s+['"]electron['"]/m.test(code) ||
      /\b(require|import)\(\s*['"]electron['"]\s*\)/.test(code)
    );
  };

  it("only the thin entries (main.ts, preload.ts) import 'electron'", () => {
    const importers = fs
      .readdirSync(appDir)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => runtimeImportsElectron(path.join(appDir, f)));
    expect(importers.sort()).toEqual(['main.ts', 'preload.ts']);
    for (const f of ['main.ts', 'preload.ts']) {
      expect(fs.readFileSync(path.join(appDir, f), 'utf8').split('\n').length, f).toBeLessThan(40);
    }
  });

  it("nothing outside electron/app imports 'electron' (the engine runs without it)", () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== appDir) walk(p);
        } else if (/\.(ts|mjs)$/.test(e.name) && runtimeImportsElectron(p))
          offenders.push(path.relative(ROOT, p));
      }
    };
    walk(path.join(ROOT, 'electron'));
    expect(offenders).toEqual([]);
  });
});
