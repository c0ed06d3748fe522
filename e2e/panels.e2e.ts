/**
 * End to end, the side panels: feature dashboards computed on first use and arriving live in an
 * open card, the inspector (resize, link direction, activation values), the library cards
 * (distinguishing prompt text, settings that differ, trace note, move to a project, live
 * counts) and the intervention panel's width. The built UI in Debian's Chromium against a real
 * `circuit serve`; each test seeds its traces through the API.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, TraceRecord } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import { type E2EModel, e2eModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import {
  closeAll,
  openPage,
  registerModel,
  SHOTS,
  startBackend,
  tid,
  traceToDone,
} from './helpers/workbench.ts';

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
  return traceToDone(api, { modelId, prompt, ...extra }, 120_000);
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
    const b = await startBackend();
    ({ server, api, model } = b);
    modelId = await registerModel(b, model.demo ? 'gemma2-demo (clt)' : 'tiny-gemma2 (fixture)');
    ({ browser, page } = await openPage(server, pageErrors, { goto: false }));
  });

  afterAll(() => closeAll({ server, api }, browser));

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
      try {
        await expect
          .poll(() => inspector.locator(tid('example-strip')).count(), { timeout: 300_000 })
          .toBeGreaterThan(0);
      } catch (e) {
        const status = await api.call('features.dashboardsStatus', { transcoderSetId: setId });
        throw new Error(
          `no examples in the card: ${JSON.stringify(status)}; card: ${await inspector.locator(tid('feature-card')).textContent()}; server: ${server.log.join('').slice(-2000)}`,
          { cause: e },
        );
      }
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

      // Any model: the models panel shows the stored count and recomputes with progress and cancel.
      await page.locator(tid('models-toggle')).click();
      const row = page.locator(tid('model-dashboards')).first();
      await expect.poll(() => row.textContent()).toContain(`${st.total.toLocaleString('en-US')} / `);
      await row.locator(tid('model-dashboards-compute')).click();
      await row.locator(tid('model-dashboards-cancel')).click({ timeout: 60_000 });
      await row.locator(tid('model-dashboards-compute')).waitFor({ timeout: 60_000 });
      await expect
        .poll(
          async () => (await api.call('features.dashboardsStatus', { transcoderSetId: setId })).job?.state,
        )
        .toBe('cancelled');
      expect((await api.call('features.dashboardsStatus', { transcoderSetId: setId })).stored).toBe(st.total);
      await page.locator(tid('models-toggle')).click();
    },
    540_000,
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
  }, 300_000);

  it('library cards: the distinguishing words, what a re-trace changed, a note, move to a project', async () => {
    const base = model.demo
      ? 'In the quiet northern town where the old river bends twice before the sea, the capital of the state containing'
      : 'w5 w9 w17 w33 w8 w40 w5 w9 w17 w33 w8 w40 w5 w9 w17 w33 w8 w40 w5 w9 w17';
    const endA = model.demo ? ' Dallas is' : ' w11 w12';
    const endB = model.demo ? ' Oakland is' : ' w13 w14';
    const project = await api.call('projects.create', { name: `Cities ${Date.now() % 100000}` });
    const target = await api.call('projects.create', { name: `Archive ${Date.now() % 100000}` });
    const a = await seedTrace(base + endA, { projectId: project.id });
    const b = await seedTrace(base + endB, { projectId: project.id });
    const re = await api.call('traces.retrace', { id: a.id, settings: { nodeThreshold: 0.6 } });
    for (let i = 0; i < 600 && (await api.call('traces.get', { id: re.id })).status !== 'done'; i++)
      await new Promise((r) => setTimeout(r, 200));
    await page.goto(server.url);
    await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
    await page.locator(tid('project-select')).selectOption(String(project.id));
    const card = (id: number) => page.locator(`${tid('library-item')}[data-trace-id="${id}"]`);
    await card(re.id).waitFor();
    // the cards keep the words that tell them apart
    const textA = (await card(a.id).locator(tid('library-prompt')).textContent())?.trim() ?? '';
    const textB = (await card(b.id).locator(tid('library-prompt')).textContent())?.trim() ?? '';
    expect(textA).toContain(endA.trim());
    expect(textB).toContain(endB.trim());
    expect(textA).not.toBe(textB);
    // rendered fully (two lines at most, no clipping of the words)
    const clipped = await card(a.id)
      .locator(tid('library-prompt'))
      .evaluate((e) => e.scrollHeight > e.clientHeight + 1);
    expect(clipped).toBe(false);
    // the re-trace says what differs
    expect(await card(re.id).locator(tid('trace-differs')).textContent()).toContain('nt 0.6 (was 0.8)');
    // a trace note, saved, shown and searchable
    await card(b.id).locator(tid('trace-note-button')).click();
    await card(b.id).locator(tid('trace-note-input')).fill('Oakland: California features should win');
    await card(b.id).locator(tid('trace-note-input')).blur();
    await card(b.id).locator(tid('trace-note')).waitFor();
    expect((await api.call('traces.get', { id: b.id })).notes).toBe(
      'Oakland: California features should win',
    );
    await shot('panels-library-cards');
    await page.locator(tid('library-search')).fill('california features');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(1);
    await page.locator(tid('library-search')).fill('');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(3);
    // move to another project: it leaves this list and both counts follow
    const option = (id: number) => page.locator(`${tid('project-select')} option[value="${id}"]`);
    await expect.poll(() => option(project.id).textContent()).toContain('(3)');
    await card(b.id).locator(tid('move-select')).selectOption(String(target.id));
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(2);
    await expect.poll(() => option(project.id).textContent()).toContain('(2)');
    await expect.poll(() => option(target.id).textContent()).toContain('(1)');
    expect((await api.call('traces.get', { id: b.id })).projectId).toBe(target.id);
    // a trace started elsewhere updates the count live
    await seedTrace(base + endA, { projectId: target.id });
    await expect.poll(() => option(target.id).textContent()).toContain('(2)');

    // re-trace with an invalid value says why instead of doing nothing
    await card(a.id).getByText('Re-trace…').click();
    await page.locator(tid('setting-nodeThreshold')).fill('1.5');
    await page.locator(tid('trace-button')).click();
    await page.getByText('Must be in [0, 1].').waitFor();
    await page.getByRole('button', { name: 'Cancel', exact: true }).first().click();

    // the Delete toast names the prompt without cutting a word
    await card(a.id).locator(tid('delete-button')).click();
    await card(a.id).locator(tid('confirm-delete')).click();
    const toast = page.locator(tid('toast-text')).filter({ hasText: 'Deleted' }).first();
    await toast.waitFor();
    const text = (await toast.textContent()) ?? '';
    const shown = /Deleted “(.*?)…?”/.exec(text)?.[1] ?? '';
    expect(shown.length).toBeGreaterThan(10);
    expect((base + endA).startsWith(shown)).toBe(true);
    expect([' ', undefined]).toContain((base + endA)[shown.length]); // cut at a word boundary
    expect(await toast.evaluate((e) => e.scrollWidth <= e.clientWidth + 1)).toBe(true);
    await shot('panels-delete-toast');
  }, 300_000);

  it('intervention panel: the graph keeps half the width, no sideways scroll, flags, token chips', async () => {
    const trace = await seedTrace(model.prompt);
    const feat = await strongestFeature(trace.id);
    await openTrace(trace.id);
    await selectNode(`L${feat.layer}/${feat.index}`);
    await page.locator(tid('intervene-node-button')).click();
    const panel = page.locator(tid('intervention-panel'));
    await panel.waitFor();
    const row = panel.locator(tid('intervene-row')).first();
    await row.locator(tid('intervene-mode')).selectOption('scale');
    await row.locator(tid('intervene-value')).fill('-3');
    await expect
      .poll(() => panel.locator(tid('intervene-warning')).textContent())
      .toContain('negative activation');
    await row.locator(tid('intervene-value')).fill('2');
    await expect.poll(() => panel.locator(tid('intervene-warning')).count()).toBe(0);
    await row.locator(tid('intervene-mode')).selectOption('set');
    await row.locator(tid('intervene-value')).fill('-1');
    expect(await panel.locator(tid('intervene-warning')).textContent()).toContain('negative activation');
    await row.locator(tid('intervene-value')).fill(String(Math.round((feat.activation ?? 1) * 40)));
    expect(await panel.locator(tid('intervene-warning')).textContent()).toMatch(
      /× (its activation|the largest)/,
    );
    await row.locator(tid('intervene-mode')).selectOption('ablate');
    await panel.locator(tid('intervene-generate')).fill('4');
    await panel.locator(tid('intervene-run')).click();
    await panel.locator(tid('intervene-result')).waitFor({ timeout: 120_000 });
    const chips = panel.locator(tid('generated-token'));
    expect(await chips.count()).toBe(4);
    // widths: the graph keeps at least half of the area beside the panel; nothing scrolls sideways
    // docked: at most half of the area; floating (half would be too narrow): over the graph, which
    // keeps its full width. Either way the graph is never squeezed below half, and nothing
    // scrolls sideways.
    const checkDock = async () => {
      const panes = (await page.locator('main.center .panes').boundingBox())!;
      const graph = (await page.locator('main.center .panes > :first-child').boundingBox())!;
      const floats = await panel.evaluate((e) => e.classList.contains('floating'));
      if (floats) expect(graph.width).toBeGreaterThanOrEqual(panes.width - 2);
      else expect((await panel.boundingBox())!.width).toBeLessThanOrEqual(panes.width / 2 + 1);
      expect(graph.width).toBeGreaterThanOrEqual(panes.width / 2 - 1);
      expect(await panel.evaluate((e) => e.scrollWidth <= e.clientWidth + 1)).toBe(true);
      return floats;
    };
    await checkDock();
    await shot('panels-intervention');
    // a smaller window with the inspector at its widest: the panel floats over the graph
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.waitForTimeout(500);
    expect(await checkDock()).toBe(true);
    await shot('panels-intervention-narrow');
    // the default inspector width at 1600: docked beside the graph
    await page.setViewportSize({ width: 1600, height: 1000 });
    await page.locator(tid('inspector-resize')).dblclick();
    await page.waitForTimeout(500);
    expect(await checkDock()).toBe(false);
    expect(await page.evaluate(() => localStorage.getItem('cw.inspectorWidth'))).toBe('370');
    await shot('panels-intervention-docked');
    await page.setViewportSize({ width: 1600, height: 1000 });
  }, 300_000);

  it('reports no page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
