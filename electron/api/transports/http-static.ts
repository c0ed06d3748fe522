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

/**
 * The Content-Security-Policy of server mode's HTTP responses. The page's own meta CSP allows
 * `ws:`/`wss:` anywhere (the dev server needs it); a header CSP also applies and the stricter
 * wins, so connect-src here names only the serving origin (`'self'`, and `ws(s)://` of the
 * request's Host, since older browsers do not count ws: as 'self') and each allowed origin.
 */
export function serverCsp(hostHeader: string | undefined, allowedOrigins: Iterable<string> = []): string {
  const connect = ["'self'"];
  const h = (hostHeader ?? '').toLowerCase();
  if (/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/.test(h))
    connect.push(`ws://${h}`, `wss://${h}`);
  for (const o of allowedOrigins) {
    const m = /^(https?):\/\/([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/.exec(o.toLowerCase());
    if (!m) continue;
    connect.push(o.toLowerCase(), `${m[1] === 'https' ? 'wss' : 'ws'}://${m[2]}${m[3] ?? ''}`);
  }
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    `connect-src ${[...new Set(connect)].join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * A request's URL, or null when it does not parse. The raw target is appended to a fixed origin
 * rather than resolved against it: `//` or `//host/x` would otherwise read as a scheme-relative
 * URL (an exception for `//`, which used to end the server, or another host's path).
 */
export function requestUrl(raw: string | undefined): URL | null {
  const target = raw ?? '/';
  try {
    return new URL(`http://x${target.startsWith('/') ? target : `/${target}`}`);
  } catch {
    return null;
  }
}

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

export function serveStatic(
  root: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  headers: Record<string, string> = BASE_HEADERS,
): void {
  const file = resolveStatic(root, req.url ?? '/');
  if (!file) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
    return;
  }
  const type = contentTypeOf(file);
  const st = fs.statSync(file);
  res.writeHead(200, {
    ...headers,
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
