/**
 * End to end, getting a graph in: tracing a prompt from the trace form (progress in the
 * library, the graph opening by itself) and importing a circuit-tracer graph JSON whose
 * untrusted text stays text. The built UI in Debian's Chromium (playwright-core, SwiftShader
 * WebGL) against the real backend (`circuit serve` on 127.0.0.1, ephemeral port, temporary
 * library).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import { circuitTracerJson, HOSTILE_LABEL } from './helpers/graph-json.ts';
import type { E2EModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import {
  canvasInk,
  closeAll,
  countOf,
  openPage,
  registerModel,
  shot,
  startBackend,
  tid,
} from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
const pageErrors: string[] = [];

describe.skipIf(!chromiumAvailable())('trace form and import', () => {
  beforeAll(async () => {
    const b = await startBackend();
    ({ server, api, model } = b);
    // The demo model is not installed: register the fixture (the UI registers the demo itself).
    if (!model.demo) await registerModel(b, 'tiny-gemma2 (fixture)');
    ({ browser, page } = await openPage(server, pageErrors, { viewport: { width: 1600, height: 950 } }));
  });

  afterAll(() => closeAll({ server, api }, browser));
  // Nothing the page threw during a test goes unnoticed.
  afterEach(() => expect(pageErrors).toEqual([]));

  it('traces a prompt from the form and shows its graph with the expected logit', async () => {
    await page.locator(tid('model-select')).locator('option').first().waitFor({ state: 'attached' });
    if (!model.demo) {
      const value = await page
        .locator(tid('model-select'))
        .locator('option', { hasText: 'tiny-gemma2 (fixture)' })
        .getAttribute('value');
      await page.locator(tid('model-select')).selectOption(value ?? '');
    }
    if (model.demo) {
      // The form pre-fills the demo prompt once the models arrive; filling before that races
      // with it (the pre-fill lands between fill's select-all and its insert: a doubled prompt).
      await expect.poll(() => page.locator(tid('prompt-input')).inputValue()).not.toBe('');
    }
    await page.locator(tid('prompt-input')).fill(model.prompt);
    if (!model.demo) {
      // The tiny fixture's features carry little influence: keep more of them.
      await page.getByText('Attribution parameters').click();
      await page.locator(tid('setting-nodeThreshold')).fill('1.5');
      await page.locator(tid('trace-button')).click();
      await page.getByText('Must be in [0, 1].').waitFor();
      await page.locator(tid('setting-nodeThreshold')).fill('0.95');
    }
    // The queued/running trace shows its progress in the library (recorded as it happens).
    await page.evaluate(() => {
      const g = globalThis as { __sawProgress?: boolean };
      g.__sawProgress = false;
      new MutationObserver(() => {
        if (document.querySelector('[data-testid="trace-progress"]')) g.__sawProgress = true;
      }).observe(document.body, { subtree: true, childList: true });
    });
    await page.locator(tid('trace-button')).click();
    const item = page.locator(tid('library-item')).first();
    await item.waitFor();
    // The new trace opens by itself once it is done.
    await page.locator(tid('graph-node-count')).waitFor({ timeout: 120_000 });
    await expect.poll(() => countOf(page, 'graph-node-count'), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await countOf(page, 'graph-edge-count')).toBeGreaterThan(0);
    expect(await item.getAttribute('data-status')).toBe('done');
    expect(await page.evaluate(() => (globalThis as { __sawProgress?: boolean }).__sawProgress)).toBe(true);
    const chips = page.locator(tid('logit-chip'));
    expect(await chips.count()).toBeGreaterThan(0);
    if (model.expectLogit)
      await expect
        .poll(() => chips.allTextContents())
        .toContainEqual(expect.stringContaining(model.expectLogit.trim()));
    expect(await canvasInk(page, tid('graph-view'))).toBeGreaterThan(0.002);
    await shot(page, 'graph-view');
  });

  it('imports a circuit-tracer graph JSON and shows it, with untrusted text as text', async () => {
    const before = (await api.call('traces.list', {})).traces.length;
    await page.locator(tid('import-json')).setInputFiles({
      name: 'the-cat.json',
      mimeType: 'application/json',
      buffer: Buffer.from(circuitTracerJson()),
    });
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(before + 1);
    await expect.poll(() => countOf(page, 'graph-node-count')).toBe(10);
    expect(await countOf(page, 'graph-edge-count')).toBe(10);
    await expect
      .poll(() => page.locator(tid('logit-chip')).allTextContents())
      .toContainEqual(expect.stringContaining('sat'));
    await page.locator(tid('node-search')).fill('cat detector');
    const hit = page.locator(tid('node-search-result')).first();
    expect(await hit.textContent()).toContain(HOSTILE_LABEL);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    await hit.click();
    expect(await page.locator(`${tid('inspector')} ${tid('label-input')}`).inputValue()).toBe(HOSTILE_LABEL);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await canvasInk(page, tid('graph-view'))).toBeGreaterThan(0.001);
    await shot(page, 'imported-graph');
    expect(pageErrors).toEqual([]);
  });
});
