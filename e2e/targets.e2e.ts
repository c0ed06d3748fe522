/**
 * End to end: attribution targets from the trace form, in Chromium against `circuit serve`.
 * The demo model: "… Dallas is" traced for " Austin" vs " Boise", both picked by searching the
 * vocabulary; the tiny fixture (demo not installed): its top two predictions. Checks: the
 * target chip, the trace's logit node for the target (in the graph pane and its view), the
 * library card's targets line, and a re-trace from the library that keeps them.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import { closeAll, openPage, registerModel, SHOTS, startBackend, tid } from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
const pageErrors: string[] = [];

describe.skipIf(!chromiumAvailable())('attribution targets from the trace form', () => {
  beforeAll(async () => {
    const b = await startBackend();
    ({ server, api, model } = b);
    // The demo registers itself; the fixture stands in when it is not installed.
    if (!model.demo) await registerModel(b, 'tiny-gemma2 (fixture)');
    ({ browser, page } = await openPage(server, pageErrors));
  });

  afterAll(() => closeAll({ server, api }, browser));

  it('traces "Austin vs Boise" and the graph has that target node', async () => {
    await page.locator(tid('model-select')).locator('option').first().waitFor({ state: 'attached' });
    if (!model.demo) {
      const value = await page
        .locator(tid('model-select'))
        .locator('option', { hasText: 'tiny-gemma2 (fixture)' })
        .getAttribute('value');
      await page.locator(tid('model-select')).selectOption(value ?? '');
    } else {
      await expect
        .poll(() => page.locator(tid('prompt-input')).inputValue(), { timeout: 30_000 })
        .not.toBe('');
    }
    await page.locator(tid('prompt-input')).fill(model.prompt);
    await page.locator(tid('targets-toggle')).click();
    // The prompt's top predictions are offered first.
    const suggestions = page.locator(tid('target-suggestion'));
    await expect.poll(() => suggestions.count(), { timeout: 30_000 }).toBeGreaterThan(1);
    let a: string;
    let b: string;
    if (model.demo) {
      expect(await suggestions.first().getAttribute('data-token')).toBe(' Austin');
      // Pick both by searching the vocabulary.
      await page.locator(tid('target-a')).fill('Austin');
      await page.locator(`${tid('target-suggestion')}[data-token=" Austin"]`).click();
      await page.locator(tid('target-b')).fill('Boise');
      await page.locator(`${tid('target-suggestion')}[data-token=" Boise"]`).click();
      a = ' Austin';
      b = ' Boise';
    } else {
      a = (await suggestions.nth(0).getAttribute('data-token')) ?? '';
      b = (await suggestions.nth(1).getAttribute('data-token')) ?? '';
      await suggestions.nth(0).click();
      await suggestions.nth(1).click();
    }
    expect(await page.locator(tid('target-a')).inputValue()).toBe(a);
    expect(await page.locator(tid('target-b')).inputValue()).toBe(b);
    await page.locator(tid('target-add')).click();
    const label = `${a.trim()} vs ${b.trim()}`;
    await expect
      .poll(() => page.locator(tid('target-chip')).allTextContents())
      .toEqual([expect.stringContaining(label)]);
    await page.waitForTimeout(250);
    await page.screenshot({ path: path.join(SHOTS, 'targets-form.png') });

    await page.locator(tid('trace-button')).click();
    const item = page.locator(tid('library-item')).first();
    await item.waitFor();
    await page.locator(tid('graph-node-count')).waitFor({ timeout: 120_000 });
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 120_000 }).toBe('done');
    const traceId = Number(await item.getAttribute('data-trace-id'));
    // The graph pane lists the target among its logit nodes, and the library card names it.
    await expect
      // (the chips show spaces as "·")
      .poll(
        async () =>
          (await page.locator(tid('logit-chip')).allTextContents()).map((t) => t.replaceAll('·', ' ')),
        {
          timeout: 30_000,
        },
      )
      .toContainEqual(expect.stringContaining(label));
    expect(await item.locator(tid('trace-targets')).textContent()).toContain(label);
    await page.screenshot({ path: path.join(SHOTS, 'targets-graph.png') });

    // The trace's graph: one logit node, the target, with a virtual id past the vocabulary.
    const trace = await api.call('traces.get', { id: traceId });
    expect(trace.settings.targets).toEqual([{ label, weights: { [a]: 1, [b]: -1 } }]);
    const view = await api.call('graphs.view', { traceId });
    const logits = view.nodes.filter((n) => n.kind === 'logit');
    expect(logits.map((n) => n.token)).toEqual([label]);
    const targetIndex = view.nodes.indexOf(logits[0]);
    expect(Array.from(view.edges.target).filter((t) => t === targetIndex).length).toBeGreaterThan(0);

    // Re-trace keeps the targets: the re-trace form starts with them, and the new trace has them.
    await item.getByRole('button', { name: 'Re-trace…' }).click();
    await expect
      .poll(() => page.locator(tid('target-chip')).allTextContents())
      .toEqual([expect.stringContaining(label)]);
    await page.locator(tid('trace-button')).click();
    await expect.poll(() => page.locator(tid('library-item')).count(), { timeout: 30_000 }).toBe(2);
    const again = page.locator(tid('library-item')).first();
    await expect.poll(() => again.getAttribute('data-status'), { timeout: 120_000 }).toBe('done');
    const againId = Number(await again.getAttribute('data-trace-id'));
    expect(againId).not.toBe(traceId);
    expect((await api.call('traces.get', { id: againId })).settings.targets).toEqual(trace.settings.targets);
    expect(pageErrors).toEqual([]);
  });
});
