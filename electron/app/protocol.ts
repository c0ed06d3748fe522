/**
 * app://renderer/… — the built UI (renderer/dist) served from disk (or the asar archive) by the
 * main process, with the desktop Content-Security-Policy on every response. Nothing outside the
 * folder is reachable: paths are normalized, `..` and encoded separators cannot climb out, and
 * symlinks are resolved before the containment check.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { contentTypeOf } from '../api/transports/content-type.ts';
import { APP_HOST, CONTENT_SECURITY_POLICY } from './security.ts';

// The callback forms, which Electron's asar support patches (the UI is inside app.asar when packaged).
const realpath = promisify(fs.realpath);
const stat = promisify(fs.stat);
const readFile = promisify(fs.readFile);

export const RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

function textResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { ...RESPONSE_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' },
  });
}

/** The file `url` names inside `root`, or null when it names nothing there. */
export function resolveAppPath(root: string, url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.host !== APP_HOST) return null;
  let rel: string;
  try {
    rel = decodeURIComponent(u.pathname);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.includes('\\')) return null;
  if (rel === '/' || rel === '') rel = '/index.html';
  const base = path.resolve(root);
  const file = path.resolve(base, `.${path.posix.normalize(rel)}`);
  if (file !== base && !file.startsWith(base + path.sep)) return null;
  return file;
}

/** The `protocol.handle` handler of the app scheme. */
export function createAppProtocolHandler(rootDir: string): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return textResponse(405, 'method not allowed');
    const file = resolveAppPath(rootDir, request.url);
    if (!file) return textResponse(404, 'not found');
    try {
      // Symlinks must not lead out of the folder either.
      const real = await realpath(file);
      const realRoot = await realpath(rootDir);
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return textResponse(404, 'not found');
      const info = await stat(real);
      if (!info.isFile()) return textResponse(404, 'not found');
      const body = request.method === 'HEAD' ? null : await readFile(real);
      return new Response(body, {
        status: 200,
        headers: {
          ...RESPONSE_HEADERS,
          'Content-Type': contentTypeOf(real),
          'Content-Length': String(info.size),
        },
      });
    } catch {
      return textResponse(404, 'not found');
    }
  };
}
