/**
 * Serving the built UI (renderer/dist) over HTTP: files under one root only (no traversal, no
 * symlinks out of it), index.html for client-side routes, conservative headers.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { contentTypeOf } from './content-type.ts';

export const BASE_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
} as const;

/** The file under `root` a URL path names, or null (outside the root, missing, not a file). */
export function resolveStatic(root: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  const realRoot = fs.realpathSync(root);
  const candidate = path.resolve(realRoot, `.${path.posix.normalize(`/${rel}`)}`);
  const tryFile = (f: string): string | null => {
    try {
      const real = fs.realpathSync(f);
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
      const st = fs.statSync(real);
      if (st.isFile()) return real;
      if (st.isDirectory()) return tryFile(path.join(real, 'index.html'));
    } catch {}
    return null;
  };
  const found = tryFile(candidate);
  if (found) return found;
  // Client-side routes (no extension) get the app's index.html.
  return path.extname(rel) === '' ? tryFile(path.join(realRoot, 'index.html')) : null;
}

export function serveStatic(root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const file = resolveStatic(root, req.url ?? '/');
  if (!file) {
    res.writeHead(404, { ...BASE_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
    return;
  }
  const type = contentTypeOf(file);
  const st = fs.statSync(file);
  res.writeHead(200, {
    ...BASE_HEADERS,
    'Content-Type': type,
    'Content-Length': st.size,
    'Cache-Control': path.basename(file) === 'index.html' ? 'no-cache' : 'public, max-age=3600',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  fs.createReadStream(file).pipe(res);
}
