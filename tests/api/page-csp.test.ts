/**
 * The page's own Content-Security-Policy (renderer/index.html, issue 14, item 9): connect-src
 * is the page's origin only ('self', which covers ws:/wss: to its own host and port), not
 * WebSockets to any host; the Vite dev server alone widens it to loopback APIs.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Plugin } from 'vite';
import { describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../../e2e/helpers/browser.ts';
import viteConfig from '../../vite.config.ts';
import { REPO_ROOT } from '../fixtures/circuit-cli.ts';

function directives(csp: string): Record<string, string[]> {
  return Object.fromEntries(
    csp
      .split(';')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => {
        const [k, ...v] = x.split(/\s+/);
        return [k, v];
      }),
  );
}

function metaCsp(html: string): string {
  const m = /<meta http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html);
  if (!m) throw new Error('the page has no CSP meta tag');
  return m[1];
}

const html = fs.readFileSync(path.join(REPO_ROOT, 'renderer', 'index.html'), 'utf8');

describe("the page's CSP", () => {
  it('connects to its own origin only: no ws:/wss: or any other scheme-wide source', () => {
    const d = directives(metaCsp(html));
    expect(d['connect-src']).toEqual(["'self'"]);
    expect(d['default-src']).toEqual(["'self'"]);
    expect(d['script-src']).toEqual(["'self'"]);
    expect(d['object-src']).toEqual(["'none'"]);
    expect(d['base-uri']).toEqual(["'none'"]);
    for (const [k, v] of Object.entries(d)) {
      for (const source of v) expect(source, k).not.toMatch(/^(ws|wss|http|https):?$|^\*$|unsafe-eval/);
    }
  });

  it('the dev server alone widens connect-src, to loopback WebSockets', async () => {
    const config = viteConfig as { plugins?: unknown[] };
    const plugin = config.plugins?.flat().find((p) => (p as Plugin)?.name === 'dev-api-csp') as Plugin;
    expect(plugin.apply).toBe('serve');
    const transform = plugin.transformIndexHtml as (html: string) => string;
    const d = directives(metaCsp(await transform(html)));
    expect(d['connect-src']).toEqual(["'self'", 'ws://127.0.0.1:*', 'ws://localhost:*', 'ws://[::1]:*']);
  });
});

/**
 * In Chromium, with no CSP header (so the meta tag alone decides): the page may open a
 * WebSocket to its own host and port, and none to another port or host name.
 */
describe.skipIf(!chromiumAvailable())("the page's CSP in Chromium", () => {
  it('lets the page open a WebSocket to its own origin only', async () => {
    const page = html.replace(/<script[^>]*src="[^"]*"[^>]*><\/script>/, '<script src="/probe.js"></script>');
    const probe = `
      const blocked = [];
      document.addEventListener('securitypolicyviolation', (e) => blocked.push(e.blockedURI));
      const tried = [location.host, '127.0.0.1:1', 'example.com'];
      for (const h of tried) { try { new WebSocket('ws://' + h + '/api'); } catch { blocked.push('ws://' + h + '/api'); } }
      setTimeout(() => { document.title = 'done ' + JSON.stringify(blocked); }, 500);`;
    const server = http.createServer((req, res) => {
      const js = req.url === '/probe.js';
      res.writeHead(200, { 'Content-Type': js ? 'text/javascript' : 'text/html' });
      res.end(js ? probe : page);
    });
    server.on('upgrade', (_req, socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${port}/`);
      // polled from here: a page-side predicate is eval'd, which this very CSP forbids
      await expect.poll(() => tab.title(), { timeout: 10_000 }).toMatch(/^done /);
      const blocked = JSON.parse((await tab.title()).slice(5)) as string[];
      expect(blocked.map((u) => u.replace(/\/api$/, ''))).toEqual(['ws://127.0.0.1:1', 'ws://example.com']);
    } finally {
      await browser.close();
      server.close();
    }
  });
});
