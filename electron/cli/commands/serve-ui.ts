/**
 * The UI `circuit serve` serves: renderer/dist, built on demand from a source checkout the first
 * time it is missing (as `npm start` does), so the README's two-command set-up leads straight
 * to the UI. The build is Vite's, run as a child process so its output and failure stay apart.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
export const DEFAULT_UI_DIR = path.join(REPO_ROOT, 'renderer', 'dist');
export const UI_BUILD_COMMAND = 'npm run build:ui';

const VITE = path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

export function uiBuilt(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'index.html'));
}

/** Whether this checkout can build the UI (its sources and Vite are here). */
export function canBuildUi(): boolean {
  return fs.existsSync(path.join(REPO_ROOT, 'renderer', 'index.html')) && fs.existsSync(VITE);
}

export interface UiBuildResult {
  ok: boolean;
  seconds: number;
  /** The build's last output lines when it failed. */
  error?: string;
}

/** Runs `vite build` (into `outDir`, default renderer/dist). */
export function buildUi(opts: { outDir?: string } = {}): Promise<UiBuildResult> {
  const t0 = Date.now();
  const args = [VITE, 'build', '--logLevel', 'warn'];
  if (opts.outDir) args.push('--outDir', path.resolve(opts.outDir), '--emptyOutDir');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out = (out + d.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (e) => resolve({ ok: false, seconds: (Date.now() - t0) / 1000, error: e.message }));
    child.on('exit', (code) => {
      const seconds = (Date.now() - t0) / 1000;
      const built = uiBuilt(opts.outDir ?? DEFAULT_UI_DIR);
      if (code === 0 && built) resolve({ ok: true, seconds });
      else
        resolve({
          ok: false,
          seconds,
          error: out.trim().split('\n').slice(-8).join('\n') || `vite exited with ${code}`,
        });
    });
  });
}

/**
 * Before serving: builds the default UI folder when it is missing and this is a source checkout,
 * saying so on `log`. A UI folder given with --ui is used as it is. Returns a line for the
 * startup banner when there is still no UI, naming the command that builds it.
 */
export async function prepareUi(
  uiDir: string,
  opts: { explicit: boolean; build: boolean; log: (line: string) => void },
): Promise<string | null> {
  if (uiBuilt(uiDir)) return null;
  if (opts.explicit) return `not built (${uiDir} has no index.html)`;
  if (opts.build && canBuildUi()) {
    opts.log(`The UI is not built yet (${uiDir} is missing): building it now (${UI_BUILD_COMMAND}), once…`);
    const r = await buildUi();
    if (r.ok) {
      opts.log(`UI built in ${r.seconds.toFixed(1)} s.`);
      return null;
    }
    opts.log(`error: the UI build failed:\n${r.error}`);
  }
  return `not built (${uiDir} is missing): run \`${UI_BUILD_COMMAND}\`, then circuit serve again`;
}
