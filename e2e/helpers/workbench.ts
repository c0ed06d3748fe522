/**
 * What every e2e file sets up: a `circuit serve` over a fresh library with its API client, the
 * e2e model, a Chromium page on the UI, and the way back down; plus tracing through the API to
 * seed a test (tracedWorkbench: all of it for the files that test one traced graph).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import type { ApiClient, Params, TraceRecord } from '../../electron/api/contract.ts';
import { connectApi } from '../../electron/api/transports/node-client.ts';
import { launchChromium } from './browser.ts';
import { ensureUiBuilt } from './build.ts';
import { type E2EModel, e2eModel } from './model.ts';
import { decodePng, inkShare } from './png.ts';
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

/**
 * The settings the UI tests trace with: the demo's defaults; the tiny fixture keeps more
 * features (they carry little influence), as the trace form's test sets it.
 */
export function uiTraceSettings(model: E2EModel): Record<string, number> {
  return model.demo ? {} : { nodeThreshold: 0.95 };
}

/** The number a counter element shows (the graph's node count, …). */
export async function countOf(scope: Page | Locator, id: string): Promise<number> {
  return Number(await scope.locator(tid(id)).first().textContent());
}

/** A screenshot into e2e/screenshots, once the page has settled. */
export async function shot(page: Page, name: string, settleMs = 250): Promise<void> {
  await page.waitForTimeout(settleMs);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Share of non-white pixels in the element: the WebGL canvas really drew something. */
export async function canvasInk(page: Page, selector: string): Promise<number> {
  const png = await page.locator(selector).first().screenshot();
  return inkShare(decodePng(png));
}

/**
 * Opens a trace in a freshly loaded page (nothing left over from an earlier test: no panes,
 * selection or panels) and waits until its graph is drawn.
 */
export async function openTrace(page: Page, server: RunningServer, traceId: number): Promise<void> {
  await page.goto('about:blank');
  await page.goto(`${server.url.replace(/\/$/, '')}/#/trace/${traceId}`);
  await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
  await page.locator(tid('graph-node-count')).waitFor({ timeout: 60_000 });
  await expect.poll(() => countOf(page, 'graph-node-count'), { timeout: 30_000 }).toBeGreaterThan(0);
}

/** Selects a node through the node search and pins it from the inspector. */
export async function pinFromSearch(page: Page, nodeId: string): Promise<void> {
  await page.locator(tid('node-search')).fill(nodeId);
  await page.locator(tid('node-search-result')).first().click();
  await expect.poll(() => page.locator(tid('inspector')).textContent()).toContain(nodeId);
  await page.locator(tid('pin-button')).click();
  await expect.poll(() => page.locator(tid('pin-button')).textContent()).toBe('Unpin');
}

/** An attribute sigma draws a node with in the main pane (null when the node is not drawn). */
export function mainPaneNodeAttribute(page: Page, nodeId: string, attribute = 'color'): Promise<unknown> {
  return page.evaluate(
    ([id, attr]) => {
      type C = {
        container: HTMLElement;
        instance: {
          getGraph(): { hasNode(n: string): boolean; getNodeAttribute(n: string, a: string): unknown };
        };
      };
      const c = [...((globalThis as { __circuitCanvases?: Set<C> }).__circuitCanvases ?? [])].find(
        (x) => x.container.closest('[data-testid="main-pane"]') !== null,
      );
      const g = c?.instance.getGraph();
      return g?.hasNode(id) ? g.getNodeAttribute(id, attr) : null;
    },
    [nodeId, attribute] as const,
  );
}

/**
 * Stores one feature dashboard (layer 0, feature 0) for the set. With none stored, the UI
 * computes the demo's dashboards by itself when a feature card first opens: a job of minutes
 * that every later job (interventions, re-prunes) waits behind. Files that do not test
 * dashboards start with this one, as the library of a session that has looked at a card would.
 */
export async function storeOneDashboard(api: ApiClient, transcoderSetId: number): Promise<void> {
  await api.call('features.putDashboards', {
    transcoderSetId,
    records: [
      {
        index: 0,
        layer: 0,
        feature: 0,
        examples_quantiles: [],
        top_logits: [],
        bottom_logits: [],
        act_min: 0,
        act_max: 1,
        quantile_values: [],
        histogram: null,
        activation_frequency: 0.001,
      },
    ],
  });
}

/** A backend with the e2e model traced and a page open on it (tracedWorkbench). */
export interface TracedWorkbench extends Backend {
  browser: Browser;
  page: Page;
  modelId: number;
  /** The model's prompt, traced. */
  trace: TraceRecord;
}

/**
 * The set-up of the files that test one traced graph: a backend, the e2e model registered, its
 * prompt traced with `settings` (default uiTraceSettings) together with `alsoTrace` prompts,
 * one dashboard stored (storeOneDashboard), and a 1600×950 page not yet navigated.
 */
export async function tracedWorkbench(
  pageErrors: string[],
  opts: {
    settings?: (model: E2EModel) => Record<string, number>;
    alsoTrace?: (model: E2EModel) => string[];
    acceptDownloads?: boolean;
  } = {},
): Promise<TracedWorkbench> {
  const b = await startBackend();
  const { api, model } = b;
  const modelId = await registerModel(b, model.demo ? 'gemma2-demo (clt)' : 'tiny-gemma2 (fixture)');
  const settings = (opts.settings ?? uiTraceSettings)(model);
  // The other prompts are queued first (older in the library), all traced while the page opens.
  const others = (opts.alsoTrace?.(model) ?? []).map((prompt) =>
    traceToDone(api, { modelId, prompt, settings }, 120_000),
  );
  const [[trace, opened]] = await Promise.all([
    Promise.all([
      traceToDone(api, { modelId, prompt: model.prompt, settings }, 120_000),
      openPage(b.server, pageErrors, {
        viewport: { width: 1600, height: 950 },
        acceptDownloads: opts.acceptDownloads,
        goto: false,
      }),
    ]),
    ...others,
  ]);
  await storeOneDashboard(api, trace.transcoderSetId as number);
  return { ...b, ...opened, modelId, trace };
}
