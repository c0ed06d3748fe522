/**
 * End to end, the subgraph: pinning nodes, grouping two into a labelled supernode that survives
 * a reload, and exporting the subgraph as PNG and SVG. The built UI in Debian's Chromium
 * against a real `circuit serve`; the trace is seeded through the API.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import { decodePng, inkShare } from './helpers/png.ts';
import type { RunningServer } from './helpers/server.ts';
import {
  canvasInk,
  closeAll,
  openTrace,
  pinFromSearch,
  SHOTS,
  shot,
  tid,
  tracedWorkbench,
} from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
let traceId = 0;
const pageErrors: string[] = [];
const GROUP_LABEL = 'Texas cities';

/**
 * The nodes the tests pin: two connected features (the strongest feature → feature edge) to
 * group, and for context the top logit, the strongest token input of the pair and the most
 * influential other feature.
 */
async function groupNodes() {
  const view = await api.call('graphs.view', { traceId });
  let best = -1;
  for (let e = 0; e < view.edges.source.length; e++) {
    const s = view.nodes[view.edges.source[e]];
    const t = view.nodes[view.edges.target[e]];
    if (s.kind !== 'feature' || t.kind !== 'feature') continue;
    if (best < 0 || Math.abs(view.edges.weight[e]) > Math.abs(view.edges.weight[best])) best = e;
  }
  expect(best).toBeGreaterThanOrEqual(0);
  const pair = [view.nodes[view.edges.source[best]], view.nodes[view.edges.target[best]]];
  const logit = view.nodes
    .filter((n) => n.kind === 'logit')
    .sort((a, b) => (b.probability ?? 0) - (a.probability ?? 0))[0];
  let tokenIn = -1;
  for (let e = 0; e < view.edges.source.length; e++) {
    if (view.nodes[view.edges.source[e]].kind !== 'token' || !pair.includes(view.nodes[view.edges.target[e]]))
      continue;
    if (tokenIn < 0 || Math.abs(view.edges.weight[e]) > Math.abs(view.edges.weight[tokenIn])) tokenIn = e;
  }
  const extra = [logit];
  if (tokenIn >= 0) extra.push(view.nodes[view.edges.source[tokenIn]]);
  const other = view.nodes
    .filter((n) => n.kind === 'feature' && !pair.includes(n))
    .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1))[0];
  if (other) extra.push(other);
  return { pair, extra };
}

/**
 * The trace open with the subgraph pane showing the pinned nodes and the "Texas cities" group:
 * as the grouping test leaves it, or set up through the API when that test did not run first.
 */
async function openGroupedSubgraph(): Promise<void> {
  const groupShown = async () =>
    (await page.locator(tid('subgraph-pane')).count()) > 0 &&
    (await page.locator(tid('supernode-item')).allTextContents()).some((t) => t.includes(GROUP_LABEL));
  if (await groupShown()) return;
  const ann = await api.call('annotations.get', { traceId });
  if (!ann.supernodes.some((s) => s.label === GROUP_LABEL)) {
    const { pair, extra } = await groupNodes();
    await api.call('annotations.update', {
      traceId,
      pinned: [...pair, ...extra].map((n) => n.id),
      supernodes: [{ label: GROUP_LABEL, nodeIds: pair.map((n) => n.id) }],
    });
  }
  // A plain trace route opens it without the subgraph pane (the pane is part of the route).
  await openTrace(page, server, traceId);
  await page.locator(tid('subgraph-button')).click();
  await expect.poll(groupShown).toBe(true);
}

describe.skipIf(!chromiumAvailable())('subgraph: pins, groups, export', () => {
  beforeAll(async () => {
    ({
      server,
      api,
      model,
      browser,
      page,
      trace: { id: traceId },
    } = await tracedWorkbench(pageErrors, {
      acceptDownloads: true,
    }));
  });

  afterAll(() => closeAll({ server, api }, browser));
  // Nothing the page threw during a test goes unnoticed.
  afterEach(() => expect(pageErrors).toEqual([]));

  it('pins two nodes, groups and labels them, and keeps the group after a reload', async () => {
    await openTrace(page, server, traceId);
    const { pair, extra } = await groupNodes();
    for (const f of pair) await pinFromSearch(page, f.id);
    await page.locator(tid('subgraph-button')).click();
    await page.locator(tid('subgraph-pane')).waitFor();
    await page.locator(tid('group-button')).click();
    await expect.poll(() => page.locator(tid('inspector')).textContent()).toContain('Supernode');
    const label = page.locator(`${tid('inspector')} ${tid('label-input')}`);
    await label.fill('Texas cities');
    await label.press('Enter');
    await expect
      .poll(() => page.locator(tid('supernode-item')).allTextContents())
      .toContainEqual(expect.stringContaining('Texas cities'));
    for (const n of extra) await pinFromSearch(page, n.id);
    expect(await canvasInk(page, tid('subgraph-view'))).toBeGreaterThan(0.001);
    await page.reload();
    await page.locator(tid('subgraph-pane')).waitFor();
    await expect
      .poll(() => page.locator(tid('supernode-item')).allTextContents())
      .toContainEqual(expect.stringContaining('Texas cities (2)'));
    await page.locator(tid('fit-button')).click();
    await page.waitForTimeout(300);
    await shot(page, 'subgraph-pane');
    const ann = await api.call('annotations.get', { traceId });
    expect(ann.pinned.sort()).toEqual([...pair, ...extra].map((f) => f.id).sort());
    expect(ann.supernodes).toEqual([
      { label: 'Texas cities', nodeIds: expect.arrayContaining(pair.map((f) => f.id)) },
    ]);
  });

  it('exports the subgraph as PNG at the chosen size and as SVG with its labels', async () => {
    await openGroupedSubgraph();
    await page.locator(tid('export-target')).selectOption('subgraph');
    await page.locator(tid('export-width')).fill('900');
    await page.locator(tid('export-height')).fill('600');
    await page.locator(tid('export-scale')).selectOption('2');
    const [pngDl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator(tid('export-png')).click(),
    ]);
    const pngPath = path.join(SHOTS, 'subgraph-export.png');
    await pngDl.saveAs(pngPath);
    const png = decodePng(fs.readFileSync(pngPath));
    expect([png.width, png.height]).toEqual([1800, 1200]);
    expect(inkShare(png)).toBeGreaterThan(0.002);

    const [svgDl] = await Promise.all([
      page.waitForEvent('download'),
      page.locator(tid('export-svg')).click(),
    ]);
    const svgPath = path.join(SHOTS, 'subgraph-export.svg');
    await svgDl.saveAs(svgPath);
    const svg = fs.readFileSync(svgPath, 'utf8');
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      return {
        error: doc.querySelector('parsererror')?.textContent ?? null,
        root: doc.documentElement.nodeName,
        width: doc.documentElement.getAttribute('width'),
        texts: [...doc.querySelectorAll('text')].map((t) => t.textContent ?? ''),
      };
    }, svg);
    expect(parsed.error).toBeNull();
    expect(parsed.root).toBe('svg');
    expect(parsed.width).toBe('900');
    expect(parsed.texts).toContainEqual(expect.stringContaining('Texas cities'));
    expect(parsed.texts).toContain('positive edge');
    expect(parsed.texts.join(' ')).toContain(model.prompt.slice(0, 20));
  });
});
