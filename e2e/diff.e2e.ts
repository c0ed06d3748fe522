/**
 * End to end: compare with three panes and its diff mode, in Chromium against `circuit serve`.
 * The traces are seeded through the API (the demo model: "… Dallas is" → Austin, "… Oakland is"
 * → Sacramento, "… Boise is"; the tiny fixture's word prompts when the demo is not installed).
 * Checks: stable pane order when a pane's trace changes, the diff's merged graph (every node of
 * the diff drawn, coloured by its status), the change list and selection from it, the route.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, TraceDiff } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import { decodePng, inkShare } from './helpers/png.ts';
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

/** DIFF_COLORS of renderer/src/graph/diff-style.ts. */
const COLOR = { only_a: '#d97706', only_b: '#7c3aed', up: '#15803d', down: '#dc2626', same: '#cbd5e1' };

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
const ids: number[] = [];
const pageErrors: string[] = [];

function prompts(m: E2EModel): string[] {
  if (m.demo)
    return [
      'The capital of state containing Dallas is',
      'The capital of state containing Oakland is',
      'The capital of state containing Boise is',
    ];
  return ['w5 w9 w17 w33 w8 w40', 'w5 w9 w17 w33 w12 w40', 'w5 w9 w17 w33 w20 w40'];
}

async function traceToEnd(modelId: number, prompt: string): Promise<number> {
  const params = { modelId, prompt, ...(model.demo ? {} : { settings: { nodeThreshold: 0.95 } }) };
  return (await traceToDone(api, params, 120_000)).id;
}

/** The live canvas drawn into the element with this test id: node count and nodes by colour. */
async function canvasNodes(testId: string): Promise<{ order: number; byColor: Record<string, number> }> {
  return page.evaluate((sel) => {
    const set = (globalThis as { __circuitCanvases?: Set<{ container: HTMLElement; instance: unknown }> })
      .__circuitCanvases;
    const c = [...(set ?? [])].find((x) => x.container.matches(sel));
    if (!c) return { order: -1, byColor: {} };
    const g = (
      c.instance as {
        getGraph(): { order: number; forEachNode(f: (n: string, a: { color: string }) => void): void };
      }
    ).getGraph();
    const byColor: Record<string, number> = {};
    g.forEachNode((_n, a) => {
      byColor[a.color] = (byColor[a.color] ?? 0) + 1;
    });
    return { order: g.order, byColor };
  }, tid(testId));
}

async function shot(name: string): Promise<void> {
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function paneOrder(): Promise<string[]> {
  return page
    .locator(tid('compare-pane'))
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-pane-id') ?? ''));
}

describe.skipIf(!chromiumAvailable())('compare and diff', () => {
  beforeAll(async () => {
    const b = await startBackend();
    ({ server, api, model } = b);
    const modelId = await registerModel(b, 'diff e2e model');
    for (const p of prompts(model)) ids.push(await traceToEnd(modelId, p));
    ({ browser, page } = await openPage(server, pageErrors, { goto: false }));
  });

  afterAll(() => closeAll({ server, api }, browser));

  it('opens three traces side by side; a pane keeps its place when its trace changes', async () => {
    await page.goto(`${server.url}/#/compare?panes=${ids.map((id) => `${id}::`).join(',')}`);
    await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
    const panes = page.locator(tid('compare-pane'));
    await expect.poll(() => panes.count(), { timeout: 60_000 }).toBe(3);
    for (let i = 0; i < 3; i++)
      await expect
        .poll(async () => Number(await panes.nth(i).locator(tid('graph-node-count')).textContent()), {
          timeout: 60_000,
        })
        .toBeGreaterThan(0);
    // "Only here" splits into nodes the other traces do not have and nodes they prune.
    for (let i = 0; i < 3; i++) {
      const pane = panes.nth(i);
      await expect.poll(() => pane.locator(tid('marked-count')).count()).toBe(1);
      const total = Number(
        (await pane.locator(tid('marked-count')).textContent())?.match(/(\d+) only here/)?.[1],
      );
      const notIn = Number(await pane.locator(tid('not-in-trace-count')).textContent());
      const pruned = Number(await pane.locator(tid('pruned-there-count')).textContent());
      expect(notIn + pruned).toBe(total);
      expect(notIn).toBeGreaterThan(0); // each prompt has its own token and answer
    }
    await shot('compare-3-panes');

    // Zooming one pane zooms the others by the same factor of their own fit; Fit fits each.
    const cameras = () =>
      page.evaluate(() =>
        [
          ...((
            globalThis as {
              __circuitCanvases?: Set<{ container: HTMLElement; getCamera(): { ratio: number } }>;
            }
          ).__circuitCanvases ?? []),
        ]
          .filter((c) => c.container.closest('[data-testid="compare-pane"]'))
          .map((c) => c.getCamera().ratio),
      );
    const box = await panes.nth(0).locator(tid('graph-view')).boundingBox();
    await page.mouse.move(box!.x + box!.width / 2, box!.y + box!.height / 2);
    await page.mouse.wheel(0, -600);
    await expect.poll(async () => Math.max(...(await cameras())), { timeout: 10_000 }).toBeLessThan(0.95);
    await page.waitForTimeout(400);
    const zoomed = await cameras();
    expect(zoomed).toHaveLength(3);
    for (const r of zoomed) expect(r).toBeCloseTo(zoomed[0], 6);
    await page.locator(tid('fit-button')).click();
    await page.waitForTimeout(600);
    for (const r of await cameras()) expect(r).toBeCloseTo(1, 6);

    const before = await paneOrder();
    // The middle pane shows the third trace, then the second again: same pane, same place.
    await panes.nth(1).locator('select.trace-select').selectOption(String(ids[2]));
    await expect.poll(() => panes.nth(1).locator('select.trace-select').inputValue()).toBe(String(ids[2]));
    expect(await paneOrder()).toEqual(before);
    await expect
      .poll(async () => Number(await panes.nth(1).locator(tid('graph-node-count')).textContent()))
      .toBeGreaterThan(0);
    await panes.nth(1).locator('select.trace-select').selectOption(String(ids[1]));
    await expect.poll(() => panes.nth(1).locator('select.trace-select').inputValue()).toBe(String(ids[1]));
    expect(await paneOrder()).toEqual(before);
    expect(await page.evaluate(() => window.location.hash)).toContain(`panes=${ids[0]}:`);
  });

  it('diff mode: one merged graph coloured by change, the largest changes listed, selection from the list', async () => {
    await page.locator(tid('diff-button')).click();
    const view = page.locator(tid('diff-view'));
    await view.waitFor();
    await expect.poll(() => page.locator(tid('diff-item')).count(), { timeout: 60_000 }).toBeGreaterThan(0);
    expect(await page.locator(tid('compare-pane')).count()).toBe(0);
    expect(await page.evaluate(() => window.location.hash)).toContain('diff=0,1');

    // The same diff through the API: the canvas draws each of its merged nodes, in its colour.
    const d: TraceDiff = await api.call('graphs.diff', {
      a: { traceId: ids[0] },
      b: { traceId: ids[1] },
      merged: true,
      top: 200,
    });
    const counts = { only_a: 0, only_b: 0, up: 0, down: 0, same: 0 };
    for (const n of d.merged!.nodes) if (n.kind !== 'token') counts[n.status]++; // tokens keep their colour
    expect(counts.only_a + counts.only_b + counts.up + counts.down).toBeGreaterThan(0);
    await expect.poll(async () => (await canvasNodes('diff-graph')).order).toBe(d.merged!.nodes.length);
    const drawn = await canvasNodes('diff-graph');
    for (const [s, c] of Object.entries(counts))
      expect(drawn.byColor[COLOR[s as keyof typeof COLOR]] ?? 0, s).toBe(c);
    const legend = page.locator(tid('diff-legend'));
    for (const [s, c] of Object.entries(counts))
      expect(await legend.locator(`[data-status="${s}"]`).textContent()).toContain(String(c));
    const png = await page.locator(tid('diff-graph')).screenshot();
    expect(inkShare(decodePng(png))).toBeGreaterThan(0.001);
    if (model.demo) {
      expect(await page.locator(tid('diff-alignment')).textContent()).toMatch(/Dallas → \S?Oakland/);
      expect(counts.only_a).toBeGreaterThan(0); // " Austin" is a logit of A only
    }

    await shot('diff-view');

    // The list: the API's changes, largest first; clicking one selects that node.
    const items = page.locator(tid('diff-item'));
    expect(await items.count()).toBe(d.nodes.changed.length);
    expect(await items.first().getAttribute('data-node-id')).toBe(d.nodes.changed[0].id_a);
    await items.first().click();
    await page.locator(tid('inspector')).waitFor();
    await expect.poll(() => items.first().getAttribute('class')).toContain('sel');
    expect(await page.locator(tid('inspector')).textContent()).not.toContain('not in the open views');
    await shot('diff-view-selected');

    // Only in B: the list shows B's nodes.
    await page.locator(tid('diff-tab-only-b')).click();
    expect(await page.locator(tid('diff-item')).count()).toBe(Math.min(200, d.nodes.totals.only_b));
    if (model.demo) expect(await page.locator(tid('diff-list')).textContent()).toContain('Sacramento');
    await page.locator(tid('diff-tab-changed')).click();
  });

  it('the diff reopens from the route, and closes back to the panes', async () => {
    await page.reload();
    await page.locator(tid('diff-view')).waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator(tid('diff-item')).count(), { timeout: 60_000 }).toBeGreaterThan(0);
    await page.locator(tid('diff-close')).click();
    await expect.poll(() => page.locator(tid('compare-pane')).count()).toBe(3);
    expect(await page.evaluate(() => window.location.hash)).not.toContain('diff=');
    expect(pageErrors).toEqual([]);
  });
});
