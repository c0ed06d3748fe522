/**
 * End to end, working with one traced graph: the inspector (node search, edges, feature card),
 * the node threshold, pointer work in the WebGL canvas, and two panes side by side. The built
 * UI in Debian's Chromium against a real `circuit serve`; the trace is seeded through the API,
 * and every test starts from a fresh page load on it.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, FeatureRecord } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import { canvasInk, closeAll, countOf, openTrace, shot, tid, tracedWorkbench } from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
let traceId = 0;
const pageErrors: string[] = [];

describe.skipIf(!chromiumAvailable())('a traced graph: inspector, threshold, canvas, compare', () => {
  beforeAll(async () => {
    ({
      server,
      api,
      model,
      browser,
      page,
      trace: { id: traceId },
    } = await tracedWorkbench(pageErrors));
  });

  afterAll(() => closeAll({ server, api }, browser));
  // Nothing the page threw during a test goes unnoticed.
  afterEach(() => expect(pageErrors).toEqual([]));

  it('opens a node via search and shows its edges and feature card in the inspector', async () => {
    await openTrace(page, server, traceId);
    const view = await api.call('graphs.view', { traceId });
    const feat = view.nodes
      .filter((n) => n.kind === 'feature')
      .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1))[0];
    expect(feat).toBeDefined();
    const trace = await api.call('traces.get', { id: traceId });
    const dashboard: FeatureRecord = {
      index: feat.index,
      layer: feat.layer,
      feature: 0,
      examples_quantiles: [
        {
          quantile_name: 'Top activations',
          examples: [
            {
              tokens: ['a', ' Texas', ' city', ' Dallas', ' is', ' big'],
              tokens_acts_list: [0, 0.5, 1.2, 4, 0.3, 0],
              train_token_ind: 3,
              is_repeated_datapoint: false,
            },
          ],
        },
      ],
      top_logits: [' Austin', ' Houston'],
      bottom_logits: [' Paris'],
      act_min: 0,
      act_max: 4,
      quantile_values: [
        { quantile: 0.5, value: 1 },
        { quantile: 0.99, value: 3.5 },
      ],
      histogram: { bin_edges: [0, 1, 2, 3, 4], counts: [50, 20, 5, 1], exact: true },
      activation_frequency: 0.012,
    };
    await api.call('features.putDashboards', {
      transcoderSetId: trace.transcoderSetId as number,
      records: [dashboard],
    });

    await page.locator(tid('node-search')).fill(`L${feat.layer}/${feat.index}`);
    await page.locator(tid('node-search-result')).first().click();
    const inspector = page.locator(tid('inspector'));
    await inspector.waitFor();
    await expect.poll(() => inspector.textContent()).toContain(feat.id);
    await expect.poll(() => inspector.locator(tid('edge-row')).count()).toBeGreaterThan(0);
    await expect.poll(() => inspector.locator(tid('example-strip')).count()).toBe(1);
    expect(await inspector.locator(tid('feature-frequency')).textContent()).toContain('1.200%');
    // Rows navigate like graph nodes.
    await inspector.locator(tid('edge-row')).first().click();
    await expect.poll(() => inspector.textContent()).not.toContain(`id${feat.id}`);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator(tid('inspector')).count()).toBe(0);
  });

  it('filters the graph at once when the node threshold moves', async () => {
    await openTrace(page, server, traceId);
    const before = await countOf(page, 'graph-node-count');
    await page.locator(tid('node-threshold')).fill('0.3');
    await expect.poll(() => countOf(page, 'graph-node-count')).toBeLessThan(before);
    await page.locator(tid('node-threshold')).fill(model.demo ? '0.8' : '0.95');
    await expect.poll(() => countOf(page, 'graph-node-count')).toBe(before);
    // Looser than the stored view: the API re-prunes from the unpruned graph and stores the view.
    await page.locator(tid('node-threshold')).fill('0.99');
    await expect
      .poll(async () => (await api.call('graphs.views', { traceId })).some((v) => v.nodeThreshold === 0.99))
      .toBe(true);
    await expect.poll(() => countOf(page, 'graph-node-count')).toBeGreaterThanOrEqual(before);
    // Back to the trace's threshold: filtered from the looser stored view (an approximation of the
    // API's own pruning at that threshold, close to it).
    await page.locator(tid('node-threshold')).fill(model.demo ? '0.8' : '0.95');
    await expect
      .poll(() => page.locator(tid('node-threshold-value')).textContent())
      .toBe(model.demo ? '0.80' : '0.95');
    expect(await countOf(page, 'graph-node-count')).toBeGreaterThan(0);
  });

  it('hovers, clicks and Ctrl-clicks nodes in the WebGL canvas', async () => {
    await openTrace(page, server, traceId);
    await page.locator(tid('fit-button')).click();
    await page.waitForTimeout(500);
    const logitPos = () =>
      page.evaluate(() => {
        type C = {
          container: HTMLElement;
          instance: {
            getGraph(): { filterNodes(f: (n: string, a: { kind: string }) => boolean): string[] };
            getNodeDisplayData(id: string): { x: number; y: number };
            framedGraphToViewport(p: { x: number; y: number }): { x: number; y: number };
          };
        };
        const c = [...((globalThis as { __circuitCanvases?: Set<C> }).__circuitCanvases ?? [])][0];
        const id = c.instance.getGraph().filterNodes((_n, a) => a.kind === 'logit')[0];
        const vp = c.instance.framedGraphToViewport(c.instance.getNodeDisplayData(id));
        const r = c.container.getBoundingClientRect();
        return { id, x: r.left + vp.x, y: r.top + vp.y };
      });
    let pos = await logitPos();
    await page.mouse.move(pos.x - 40, pos.y + 40);
    await page.mouse.move(pos.x, pos.y, { steps: 4 });
    await page.locator(tid('tooltip')).waitFor();
    await page.mouse.click(pos.x, pos.y);
    await expect.poll(() => page.locator(tid('inspector')).textContent()).toContain(pos.id);
    const pinned = async () => (await api.call('annotations.get', { traceId })).pinned;
    // The inspector took room: the node moved. Clicks apart by more than sigma's double-click
    // window (a double click zooms).
    await page.waitForTimeout(400);
    pos = await logitPos();
    await page.keyboard.down('Control');
    await page.mouse.click(pos.x, pos.y);
    await expect.poll(pinned).toContain(pos.id);
    await page.waitForTimeout(400);
    // Where the node is now (the pin may have changed the panes' layout on a slow machine).
    const again = await logitPos();
    expect(again.id).toBe(pos.id);
    await page.mouse.click(again.x, again.y);
    await page.keyboard.up('Control');
    await expect.poll(pinned).not.toContain(pos.id);
    await page.mouse.move(5, 5);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator(tid('inspector')).count()).toBe(0);
  });

  it('compares the trace at two thresholds side by side', async () => {
    await openTrace(page, server, traceId);
    await page.locator(tid('fit-button')).click();
    await page.locator(tid('compare-button')).click();
    const panes = page.locator(tid('compare-pane'));
    await expect.poll(() => panes.count()).toBe(2);
    await panes.nth(1).locator(tid('node-threshold')).fill('0.4');
    await expect
      .poll(
        async () =>
          (await countOf(panes.nth(0), 'graph-node-count')) -
          (await countOf(panes.nth(1), 'graph-node-count')),
      )
      .toBeGreaterThan(0);
    expect(await panes.nth(0).locator(tid('node-threshold-value')).textContent()).toBe(
      model.demo ? '0.80' : '0.95',
    );
    expect(await panes.nth(1).locator(tid('node-threshold-value')).textContent()).toBe('0.40');
    expect(
      Number((await panes.nth(0).locator(tid('marked-count')).textContent())?.replace(/\D+/g, '')),
    ).toBeGreaterThan(0);
    expect(await canvasInk(page, `${tid('compare-pane')} >> nth=1 >> ${tid('graph-view')}`)).toBeGreaterThan(
      0.001,
    );
    await shot(page, 'compare-view');
    const live = await page.evaluate(
      () => (globalThis as { __circuitCanvases?: Set<unknown> }).__circuitCanvases?.size,
    );
    expect(live).toBe(2);
    await panes.nth(1).locator(tid('close-pane')).click();
    await expect.poll(() => page.locator(tid('compare-pane')).count()).toBe(0);
    // The closed pane's sigma instance is killed (its WebGL context released).
    await expect
      .poll(() =>
        page.evaluate(() => (globalThis as { __circuitCanvases?: Set<unknown> }).__circuitCanvases?.size),
      )
      .toBe(1);
  });
});
