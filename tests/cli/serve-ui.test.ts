/**
 * `circuit serve` and its UI: renderer/dist is built on demand (here into a temporary folder,
 * so the checkout's own build is untouched), a server without a UI names the command that
 * builds it, and odd request targets such as `//` get an answer instead of ending the server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { requestUrl } from '../../electron/api/transports/http-static.ts';
import { buildUi, canBuildUi, prepareUi, REPO_ROOT } from '../../electron/cli/commands/serve-ui.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-serve-ui-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function get(url: string, rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('request targets', () => {
  it('parses "//" and "//host/x" as paths of this server', () => {
    expect(requestUrl('//')?.pathname).toBe('//');
    expect(requestUrl('//evil.example/x')?.pathname).toBe('//evil.example/x');
    expect(requestUrl('//evil.example/x')?.host).toBe('x');
    expect(requestUrl('/api?token=a')?.searchParams.get('token')).toBe('a');
  });
});

describe('circuit serve without a built UI', () => {
  it('serves the API, says which command builds the UI, and survives "//"', async () => {
    const empty = path.join(tmp, 'no-ui');
    fs.mkdirSync(empty);
    const child: ChildProcess = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin/circuit.mjs'),
        'serve',
        '--port',
        '0',
        '--data',
        path.join(tmp, 'data'),
        '--ui',
        empty,
        '--json',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    try {
      const info = await new Promise<{ url: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          clearTimeout(timer);
          resolve(JSON.parse(line));
        });
      });
      expect(stderr).toContain('has no index.html');
      const root = await get(info.url, '/');
      expect(root.body).toContain('npm run build:ui');
      const slashes = await get(info.url, '//');
      expect(slashes.status).toBe(404); // an answer: it used to throw in the request handler and end the server
      const health = await get(info.url, '/health');
      expect(health.status).toBe(200);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('names the build command when it cannot build', async () => {
    const lines: string[] = [];
    const missing = await prepareUi(path.join(tmp, 'nowhere'), {
      explicit: false,
      build: false,
      log: (l) => lines.push(l),
    });
    expect(missing).toContain('npm run build:ui');
    expect(lines).toEqual([]);
  });
});

describe.skipIf(!canBuildUi())('building the UI on demand', () => {
  it('builds index.html and its assets into the folder', async () => {
    const out = path.join(tmp, 'dist');
    const r = await buildUi({ outDir: out });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('<div id="app">');
    expect(fs.readdirSync(path.join(out, 'assets')).some((f) => f.endsWith('.js'))).toBe(true);
  }, 180_000);
});
