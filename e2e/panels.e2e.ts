/**
 * End to end, the side panels: feature dashboards computed on first use and arriving live in an
 * open card, the inspector (resize, link direction, activation values), the library cards
 * (distinguishing prompt text, settings that differ, trace note, move to a project, live
 * counts) and the intervention panel's width. The built UI in Debian's Chromium against a real
 * `circuit serve`; each test seeds its traces through the API.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, TraceRecord } from '../electron/api/contract.ts';
import { connectApi } from '../electron/api/transports/node-client.ts';
import { chromiumAvailable, launchChromium } from './helpers/browser.ts';
import { ensureUiBuilt } from './helpers/build.ts';
import { type E2EModel, e2eModel } from './helpers/model.ts';
import { type RunningServer, startServer } from './helpers/server.ts';

const SHOTS = path.join(import.meta.dirname, 'screenshots');
const tid = (id: string) => `[data-testid="${id}"]`;

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
let modelId = 0;
const pageErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Traces a prompt through the API and waits until it is done. */
async function seedTrace(
  prompt: string,
  extra: { projectId?: number; settings?: Record<string, number> } = {},
): Promise<TraceRecord> {
  const t = await api.call('traces.start', { modelId, prompt, ...extra });
  for (let i = 0; i < 600; i++) {
    const got = await api.call('traces.get', { id: t.id });
    if (got.status === 'done') return got;
    if (got.status === 'failed' || got.status === 'cancelled') throw new Error(`trace ${t.id} ${got.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`trace ${t.id} did not finish`);
}

/** The strongest feature node of a trace's default view. */
async function strongestFeature(traceId: number) {
  const v = await api.call('graphs.view', { traceId });
  const feats = v.nodes.filter((n) => n.kind === 'feature');
  feats.sort((a, b) => Math.abs(b.activation ?? 0) - Math.abs(a.activation ?? 0));
  return feats[0];
}

async function openTrace(traceId: number): Promise<void> {
  await page.goto(`${server.url.replace(/\/$/, '')}/#/trace/${traceId}`);
  await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
  await page.locator(tid('graph-node-count')).waitFor({ timeout: 60_000 });
}

async function selectNode(query: string): Promise<void> {
  await page.locator(tid('node-search')).fill(query);
  await page.locator(tid('node-search-result')).first().click();
  await page.locator(tid('inspector')).waitFor();
}

describe.skipIf(!chromiumAvailable())('side panels', () => {
  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    await ensureUiBuilt();
    model = e2eModel();
    server = await startServer();
    api = await connectApi(server.wsUrl);
    const m = await api.call('models.register', {
      checkpointDir: model.checkpointDir,
      transcoderDir: model.transcoderDir,
      name: model.demo ? 'gemma2-demo (clt)' : 'tiny-gemma2 (fixture)',
    });
    expect(m.valid, JSON.stringify(m.validation.problems)).toBe(true);
    modelId = m.id;
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await server?.close();
    if (server && !process.env.E2E_KEEP_DATA) fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it.skipIf(!e2eModel().demo)(
    'computes the demo dashboards on first use; the open card fills in live',
    async () => {
      const trace = await seedTrace(model.prompt);
      const setId = trace.transcoderSetId as number;
      expect((await api.call('features.dashboardsStatus', { transcoderSetId: setId })).stored).toBe(0);
      const feat = await strongestFeature(trace.id);
      await openTrace(trace.id);
      // Record the progress line as it appears (the job takes seconds).
      await page.evaluate(() => {
        const g = globalThis as { __sawDashProgress?: boolean };
        g.__sawDashProgress = false;
        new MutationObserver(() => {
          if (document.querySelector('[data-testid="dashboards-progress"]')) g.__sawDashProgress = true;
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
      });
      await selectNode(`L${feat.layer}/${feat.index}`);
      const inspector = page.locator(tid('inspector'));
      // No user action: the job starts by itself, the card shows its progress, then its examples.
      await expect
        .poll(() => inspector.locator(tid('example-strip')).count(), { timeout: 120_000 })
        .toBeGreaterThan(0);
      expect(
        await page.evaluate(() => (globalThis as { __sawDashProgress?: boolean }).__sawDashProgress),
      ).toBe(true);
      const st = await api.call('features.dashboardsStatus', { transcoderSetId: setId });
      expect(st.job?.state).toBe('done');
      expect(st.stored).toBe(st.total);
      // Activation values: every example carries its max as a number, every token its value on hover.
      const act = await inspector.locator(tid('example-act')).first().textContent();
      expect(Number(act)).toBeGreaterThan(0);
      const title = await inspector
        .locator(`${tid('example-strip')} .t.max`)
        .first()
        .getAttribute('title');
      expect(title).toMatch(/^".*" -?\d/);
      // Strips wrap instead of clipping: no strip's text is wider than its box.
      const clipped = await inspector
        .locator(`${tid('example-strip')} .text`)
        .evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).length);
      expect(clipped).toBe(0);
      await inspector.locator(tid('feature-card')).scrollIntoViewIfNeeded();
    await shot('panels-feature-card-live');
    },
  );

  it('resizes the inspector by its handle, keeps the width, and toggles the links it lists', async () => {
    const trace = await seedTrace(model.prompt);
    const feat = await strongestFeature(trace.id);
    await openTrace(trace.id);
    await selectNode(`L${feat.layer}/${feat.index}`);
    const inspector = page.locator(tid('inspector'));
    const before = (await inspector.boundingBox())!.width;
    const h = (await page.locator(tid('inspector-resize')).boundingBox())!;
    await page.mouse.move(h.x + 2, h.y + 200);
    await page.mouse.down();
    await page.mouse.move(h.x - 150, h.y + 200, { steps: 5 });
    await page.mouse.move(h.x - 250, h.y + 200, { steps: 5 });
    await page.mouse.up();
    const after = (await inspector.boundingBox())!.width;
    expect(after - before).toBeGreaterThan(200);
    // The graph keeps at least 420 px beside the library and the inspector.
    const graphWidth = (await page.locator('main.center').boundingBox())!.width;
    expect(graphWidth).toBeGreaterThanOrEqual(420);
    // Persisted: a reload opens it at the same width.
    await openTrace(trace.id);
    await selectNode(`L${feat.layer}/${feat.index}`);
    expect(Math.abs((await page.locator(tid('inspector')).boundingBox())!.width - after)).toBeLessThan(3);
    // Link direction: inputs only, outputs only, both.
    await page.locator(tid('links-inputs')).click();
    expect(await page.locator(tid('edges-outPos')).count()).toBe(0);
    expect(await page.locator(tid('edges-inPos')).count()).toBe(1);
    await page.locator(tid('links-outputs')).click();
    expect(await page.locator(tid('edges-inPos')).count()).toBe(0);
    expect(await page.locator(tid('edges-outPos')).count()).toBe(1);
    await page.locator(tid('links-both')).click();
    expect(await page.locator(tid('edges-inPos')).count()).toBe(1);
    await shot('panels-inspector-wide');
  });

  it('reports no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
