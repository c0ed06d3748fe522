/**
 * End to end, the library: search by prompt, re-trace with changed settings, delete with
 * confirmation and undo, duplicate, "traces with it" for a feature, and feature sizes by
 * activation. The built UI in Debian's Chromium against a real `circuit serve`; the traces are
 * seeded through the API, and every test starts from a fresh page load.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import {
  closeAll,
  mainPaneNodeAttribute,
  openTrace,
  shot,
  tid,
  tracedWorkbench,
} from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
/** The trace the tests work on (its prompt is the model's). */
let traceId = 0;
/** A second trace whose prompt shares no word with the model's, for the search. */
let other = { prompt: '', word: '' };
const pageErrors: string[] = [];

/** The most important feature (least cumulative influence) of the trace's default view. */
/** The library's one other prompt, and a word only it has. */
function otherPrompt(m: E2EModel) {
  return m.demo
    ? { prompt: 'The beaches near Honolulu are', word: 'Honolulu' }
    : { prompt: 'w50 w51 w52 w53', word: 'w51' };
}

async function strongestFeature() {
  const view = await api.call('graphs.view', { traceId });
  const feat = view.nodes
    .filter((n) => n.kind === 'feature')
    .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1))[0];
  expect(feat).toBeDefined();
  return feat;
}

describe.skipIf(!chromiumAvailable())('library', () => {
  beforeAll(async () => {
    ({
      server,
      api,
      model,
      browser,
      page,
      trace: { id: traceId },
    } = await tracedWorkbench(pageErrors, { alsoTrace: (m) => [otherPrompt(m).prompt] }));
    other = otherPrompt(model);
  });

  afterAll(() => closeAll({ server, api }, browser));
  // Nothing the page threw during a test goes unnoticed.
  afterEach(() => expect(pageErrors).toEqual([]));

  it('searches the library by prompt', async () => {
    await openTrace(page, server, traceId);
    // The library: the model's prompt (and the copies other tests make of it), and one other.
    const { traces } = await api.call('traces.list', {});
    expect(traces.length).toBeGreaterThan(0);
    const word = model.prompt.split(' ')[1];
    await page.locator(tid('library-search')).fill(word);
    await expect
      .poll(() => page.locator(tid('library-item')).count())
      .toBe(traces.filter((t) => t.prompt.includes(word)).length);
    await page.locator(tid('library-search')).fill(other.word);
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(1);
    await page.locator(tid('library-search')).fill('no such prompt at all');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(0);
    await page.locator(tid('library-search')).fill('');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(traces.length);
    await shot(page, 'library');
  });

  it('re-traces with changed settings, deletes with confirmation and undoes the delete', async () => {
    await openTrace(page, server, traceId);
    const items = page.locator(tid('library-item'));
    const before = await items.count();
    await page.locator(`[data-trace-id="${traceId}"]`).getByRole('button', { name: 'Re-trace…' }).click();
    await page.locator(tid('setting-nodeThreshold')).fill('0.9');
    await page.locator(tid('trace-button')).click();
    await expect.poll(() => items.count()).toBe(before + 1);
    const fresh = items.first();
    await expect.poll(() => fresh.getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
    const freshId = Number(await fresh.getAttribute('data-trace-id'));
    expect(freshId).not.toBe(traceId);
    const t = await api.call('traces.get', { id: freshId });
    expect(t.settings.nodeThreshold).toBe(0.9);
    expect(t.prompt).toBe((await api.call('traces.get', { id: traceId })).prompt);

    await fresh.locator(tid('delete-button')).click();
    await fresh.locator(tid('confirm-delete')).click();
    await expect.poll(() => items.count()).toBe(before);
    await page.locator('.toast').getByRole('button', { name: 'Undo' }).click();
    await expect.poll(() => items.count()).toBe(before + 1);
    expect((await api.call('traces.get', { id: freshId })).deletedAt).toBeNull();
  });

  it('duplicates a trace, finds the traces that hold a feature, sizes features by activation', async () => {
    // The trace open, with pins (a copy takes them along).
    const feature = await strongestFeature();
    await api.call('annotations.update', { traceId, pinned: [feature.id] });
    await openTrace(page, server, traceId);
    const items = page.locator(tid('library-item'));
    const before = await items.count();
    const original = page.locator(`[data-trace-id="${traceId}"]`);
    await original.locator(tid('duplicate-button')).click();
    await expect.poll(() => items.count()).toBe(before + 1);
    const copyId = Number(await items.first().getAttribute('data-trace-id'));
    expect(copyId).not.toBe(traceId);
    expect(await items.first().getAttribute('data-status')).toBe('done');
    const [a, b] = await Promise.all([
      api.call('traces.get', { id: traceId }),
      api.call('traces.get', { id: copyId }),
    ]);
    expect(b.prompt).toBe(a.prompt);
    expect(b.graph?.nnz).toBe(a.graph?.nnz);
    expect((await api.call('annotations.get', { traceId: copyId })).pinned).toEqual(
      (await api.call('annotations.get', { traceId })).pinned,
    );

    // "Traces with it": the library lists the traces whose graph holds the inspected feature.
    await page.locator(tid('node-search')).fill(feature.id);
    await page.locator(tid('node-search-result')).first().click();
    await page.locator(tid('find-traces-button')).click();
    await page.locator(tid('library-feature-filter')).waitFor();
    const [layer, index] = feature.id.split('_').map(Number);
    const want = await api.call('traces.list', {
      feature: { layer, index },
      transcoderSetId: a.transcoderSetId ?? undefined,
    });
    expect(want.traces.map((t) => t.id)).toEqual(expect.arrayContaining([traceId, copyId]));
    await expect
      .poll(async () =>
        (await items.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-trace-id'))))).sort(),
      )
      .toEqual(want.traces.map((t) => t.id).sort());
    await page.locator(`${tid('library-feature-filter')} button`).click();
    await expect.poll(() => items.count()).toBe(before + 1);

    // Feature sizes by activation instead of influence: the glyphs are redrawn.
    const sizes = async () => {
      const ids = (await api.call('graphs.view', { traceId })).nodes.map((n) => n.id);
      return Promise.all(ids.slice(0, 40).map((id) => mainPaneNodeAttribute(page, id, 'size')));
    };
    const byInfluence = await sizes();
    await page.locator(tid('size-by')).selectOption('activation');
    await expect.poll(sizes).not.toEqual(byInfluence);
    await page.locator(tid('size-by')).selectOption('influence');
    await expect.poll(sizes).toEqual(byInfluence);
    expect(pageErrors).toEqual([]);
  });
});
