/**
 * `circuit serve` for the end-to-end tests: the real backend on 127.0.0.1 with an ephemeral
 * port and a temporary library folder, serving the built UI (renderer/dist).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface RunningServer {
  url: string;
  wsUrl: string;
  dataDir: string;
  log: string[];
  close(): Promise<void>;
}

export async function startServer(
  opts: { dataDir?: string; cacheDir?: string } = {},
): Promise<RunningServer> {
  if (!fs.existsSync(path.join(ROOT, 'renderer/dist/index.html'))) {
    throw new Error('renderer/dist is missing: run `npm run build:ui` first');
  }
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cw-e2e-data-'));
  const cacheDir = opts.cacheDir ?? path.join(os.tmpdir(), 'cw-e2e-cache');
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(ROOT, 'bin/circuit.mjs'), 'serve', '--port', '0', '--data', dataDir, '--json'],
    { cwd: ROOT, env: { ...process.env, CIRCUIT_CACHE_DIR: cacheDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => log.push(d));
  const info = await new Promise<{ url: string; ws_url: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`circuit serve did not start:\n${log.join('')}`)),
      60_000,
    );
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line);
        if (j.url) {
          clearTimeout(timer);
          resolve(j);
        }
      } catch {}
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`circuit serve exited with ${code}:\n${log.join('')}`));
    });
  });
  return {
    url: info.url,
    wsUrl: info.ws_url,
    dataDir,
    log,
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
