/**
 * What every e2e file sets up: a `circuit serve` over a fresh library with its API client, the
 * e2e model, a Chromium page on the UI, and the way back down; plus tracing through the API to
 * seed a test.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { ApiClient, Params, TraceRecord } from '../../electron/api/contract.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import { launchChromium } from './browser.ts';
import { ensureUiBuilt } from './build.ts';
import { type E2EModel, e2eModel } from './model.ts';
import { type RunningServer, startServer } from './server.ts';

export const SHOTS = path.join(import.meta.dirname, '..', 'screenshots');
export const tid = (id: string) => `[data-testid="${id}"]`;

export interface Backend {
  server: RunningServer;
  api: ApiClient;
  model: E2EModel;
}

/** Builds the UI if needed, starts the server and connects to it. */
export async function startBackend(): Promise<Backend> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await ensureUiBuilt();
  const model = e2eModel();
  const server = await startServer();
  const api = await connectApi(server.wsUrl);
  return { server, api, model };
}

/** Registers the e2e model under `name`; its id (an invalid registration fails the test). */
export async function registerModel(b: Backend, name: string): Promise<number> {
  const m = await b.api.call('models.register', {
    checkpointDir: b.model.checkpointDir,
    transcoderDir: b.model.transcoderDir,
    name,
  });
  expect(m.valid, JSON.stringify(m.validation.problems)).toBe(true);
  return m.id;
}

/**
 * A Chromium page on the server's UI, its errors collected into `pageErrors`; with `goto`
 * (default) it has loaded the UI and is connected.
 */
export async function openPage(
  server: RunningServer,
  pageErrors: string[],
  opts: { viewport?: { width: number; height: number }; acceptDownloads?: boolean; goto?: boolean } = {},
): Promise<{ browser: Browser; page: Page }> {
  const browser = await launchChromium();
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1600, height: 1000 },
    ...(opts.acceptDownloads ? { acceptDownloads: true } : {}),
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  if (opts.goto ?? true) {
    await page.goto(server.url);
    await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
  }
  return { browser, page };
}

/** Closes what was opened (any part may be missing after a failed set-up); the library goes unless E2E_KEEP_DATA. */
export async function closeAll(b: Partial<Backend>, browser?: Browser): Promise<void> {
  await browser?.close();
  await b.api?.close();
  await b.server?.close();
  if (b.server && !process.env.E2E_KEEP_DATA) fs.rmSync(b.server.dataDir, { recursive: true, force: true });
}

/** Starts a trace through the API and polls until it is done; failed, cancelled or late throws. */
export async function traceToDone(
  api: ApiClient,
  params: Params<'traces.start'>,
  timeoutMs: number,
): Promise<TraceRecord> {
  const t = await api.call('traces.start', params);
  const t0 = Date.now();
  for (;;) {
    const got = await api.call('traces.get', { id: t.id });
    if (got.status === 'done') return got;
    if (got.status === 'failed' || got.status === 'cancelled')
      throw new Error(`trace ${t.id}: ${got.status} ${JSON.stringify(got.error ?? '')}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`trace ${t.id} did not finish`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
