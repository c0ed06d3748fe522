/**
 * End to end, the graph view: the layer and token axes, labels that never overlap, hover that
 * dims (never hides) and is cleared by Esc, the link-direction toggle, the edge-weight readout,
 * and a big graph that draws a budget of edges. Traces its own graphs through the API (the
 * demo prompt, a 40-token prompt) and imports a synthetic 10k-node / 100k-edge graph in
 * circuit-tracer's format; screenshots at 1600×1000 go to e2e/screenshots/.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
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

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
let modelId = 0;
const pageErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function canvasInk(): Promise<number> {
  return inkShare(decodePng(await page.locator(tid('graph-view')).first().screenshot()));
}

async function traceAndWait(prompt: string): Promise<number> {
  return (await traceToDone(api, { modelId, prompt }, 600_000)).id;
}

async function openTrace(id: number): Promise<void> {
  const item = page.locator(`${tid('library-item')}[data-trace-id="${id}"]`);
  await item.waitFor({ timeout: 60_000 });
  await item.locator('button.prompt').click();
  await expect
    .poll(() => page.locator(`${tid('library-item')}.open`).getAttribute('data-trace-id'), {
      timeout: 60_000,
    })
    .toBe(String(id));
  await expect
    .poll(async () => Number(await page.locator(tid('graph-node-count')).first().textContent()), {
      timeout: 120_000,
    })
    .toBeGreaterThan(0);
  await expect
    .poll(() => page.evaluate(() => (globalThis as CanvasHost).__circuitCanvases?.size ?? 0), {
      timeout: 60_000,
    })
    .toBeGreaterThan(0);
  // the axes follow the first drawn frame
  await page.locator(tid('layer-label')).first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(300);
}

/** What the page exposes of its canvases (canvas.ts registers them). */
interface CanvasLike {
  container: HTMLElement;
  placeLabelsNow(): Array<{
    id: string;
    x0: number;
    y0: number;
    x1: number;
    y1: number;
    text?: string;
    forced?: boolean;
  }>;
  hoveredNode(): string | null;
  pick(x: number, y: number): string | null;
  counts(): { nodes: number; edges: number; sceneEdges: number; big: boolean };
  instance: {
    getNodeDisplayData(id: string): { x: number; y: number } | undefined;
    framedGraphToViewport(p: { x: number; y: number }): { x: number; y: number };
    getNodeDisplayedLabels(): Set<string>;
    getGraph(): {
      forEachNode(f: (id: string, a: { kind: string; label: string }) => void): void;
      neighbors(id: string): string[];
      inNeighbors(id: string): string[];
      outNeighbors(id: string): string[];
      degree(id: string): number;
    };
  };
}
interface CanvasHost {
  __circuitCanvases?: Set<CanvasLike>;
}

/** A feature node with links, on screen, that the CPU picking resolves to itself: page coordinates. */
async function hoverTarget(): Promise<{ id: string; x: number; y: number }> {
  return page.evaluate(() => {
    const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
    const s = c.instance;
    const r = c.container.getBoundingClientRect();
    let best: { id: string; x: number; y: number; deg: number } | null = null;
    s.getGraph().forEachNode((id, a) => {
      if (a.kind !== 'feature') return;
      const d = s.getNodeDisplayData(id);
      if (!d) return;
      const p = s.framedGraphToViewport(d);
      if (p.x < 60 || p.y < 60 || p.x > r.width - 60 || p.y > r.height - 60) return;
      if (c.pick(p.x, p.y) !== id) return;
      const deg = s.getGraph().degree(id);
      if (deg > 0 && (!best || deg > best.deg)) best = { id, x: p.x + r.left, y: p.y + r.top, deg };
    });
    if (!best) throw new Error('no feature node to hover');
    const b = best as { id: string; x: number; y: number };
    return { id: b.id, x: b.x, y: b.y };
  });
}

/** Label boxes placed now: no two overlap (unless both are forced), and every drawn label was placed. */
async function checkLabels(): Promise<number> {
  const r = await page.evaluate(() => {
    const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
    const boxes = c.placeLabelsNow();
    const ctx = document.createElement('canvas').getContext('2d') as CanvasRenderingContext2D;
    ctx.font = '11px system-ui, sans-serif';
    const narrow = boxes.filter((b) => ctx.measureText(b.text ?? '').width > b.x1 - b.x0).map((b) => b.text);
    return { boxes, narrow };
  });
  const { boxes } = r;
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (a.forced && b.forced) continue;
      const hit = a.x0 < b.x1 && a.x1 > b.x0 && a.y0 < b.y1 && a.y1 > b.y0;
      expect(hit, `labels "${a.text}" and "${b.text}" overlap`).toBe(false);
    }
  // the estimated boxes hold the real text
  expect(r.narrow).toEqual([]);
  return boxes.length;
}

/** A circuit-tracer graph JSON shaped like a real one: 26 layers, 20 tokens, edges upward. */
function syntheticGraphJson(nNodes: number, nEdges: number): string {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const L = 26;
  const T = 20;
  const tokens = ['<bos>', ...Array.from({ length: T - 1 }, (_, p) => ` word${p}`)];
  const nodes: Array<Record<string, unknown>> = [];
  const rank: number[] = [];
  tokens.forEach((_, p) => {
    nodes.push({
      node_id: `E_${1000 + p}_${p}`,
      feature: 1000 + p,
      layer: 'E',
      ctx_idx: p,
      feature_type: 'embedding',
      jsNodeId: `E_${1000 + p}-${p}`,
      clerp: '',
    });
    rank.push(-1);
  });
  const nLogits = 10;
  const nFeatures = nNodes - T - nLogits;
  const shares = Array.from({ length: nFeatures }, () => rnd()).sort((a, b) => a - b);
  const used = new Set<string>();
  for (let i = 0; i < nFeatures; i++) {
    const layer = Math.floor(rnd() * L);
    const pos = Math.floor(rnd() ** 0.6 * T);
    let idx = Math.floor(rnd() * 16384);
    while (used.has(`${layer}_${idx}_${pos}`)) idx = (idx + 1) % 16384;
    used.add(`${layer}_${idx}_${pos}`);
    nodes.push({
      node_id: `${layer}_${idx}_${pos}`,
      feature: ((layer + idx) * (layer + idx + 1)) / 2 + idx,
      layer: String(layer),
      ctx_idx: pos,
      feature_type: 'cross layer transcoder',
      jsNodeId: `${layer}_${idx}-0`,
      clerp: i % 11 === 0 ? `feature ${layer}/${idx}` : '',
      influence: Math.min(0.8, shares[i] * 0.8),
      activation: rnd() * 10,
    });
    rank.push(layer);
  }
  let rest = 1;
  for (let k = 0; k < nLogits; k++) {
    const p = k === nLogits - 1 ? rest : rest * 0.45;
    rest -= p;
    nodes.push({
      node_id: `${L + 1}_${500 + k}_${T - 1}`,
      feature: 500 + k,
      layer: String(L + 1),
      ctx_idx: T - 1,
      feature_type: 'logit',
      token_prob: p,
      is_target_logit: k === 0,
      jsNodeId: `L_${500 + k}-${T - 1}`,
      clerp: `Output " out${k}" (p=${p.toFixed(3)})`,
    });
    rank.push(L);
  }
  const links: Array<{ source: string; target: string; weight: number }> = [];
  const seen = new Set<number>();
  const N = nodes.length;
  while (links.length < nEdges) {
    const s = Math.floor(rnd() * N);
    const t = Math.floor(rnd() * N);
    if (rank[s] >= rank[t] || seen.has(s * N + t)) continue;
    seen.add(s * N + t);
    links.push({
      source: nodes[s].node_id as string,
      target: nodes[t].node_id as string,
      weight: (rnd() < 0.7 ? 1 : -1) * rnd() ** 3 * 5,
    });
  }
  return JSON.stringify({
    metadata: {
      slug: 'synthetic-10k',
      scan: 'synthetic',
      prompt_tokens: tokens,
      prompt: tokens.join(''),
      node_threshold: 0.8,
      schema_version: 1,
      transcoder_list: [],
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes,
    links,
  });
}

describe.skipIf(!chromiumAvailable())('graph view', () => {
  beforeAll(async () => {
    const b = await startBackend();
    ({ server, api, model } = b);
    if (model.demo) {
      const list = await api.call('models.list', {});
      const demo = list.find((m) => m.valid) ?? null;
      if (demo) modelId = demo.id;
    }
    if (!modelId) modelId = await registerModel(b, 'graph-view model');
    ({ browser, page } = await openPage(server, pageErrors));
  });

  afterAll(() => closeAll({ server, api }, browser));

  it('draws the layer axis and the prompt tokens along the bottom, labels without overlap', async () => {
    const id = await traceAndWait(model.prompt);
    await openTrace(id);
    const trace = await api.call('traces.get', { id });
    const view = await api.call('graphs.view', { traceId: id });
    // Layer axis: Emb at the bottom, then L0, …, Logits at the top (screen y decreasing).
    const layers = await page
      .locator(tid('layer-label'))
      .evaluateAll((els) =>
        els.map((e) => ({ text: e.textContent?.trim() ?? '', y: e.getBoundingClientRect().top })),
      );
    expect(layers[0].text).toBe('Emb');
    expect(layers.at(-1)?.text).toBe('Logits');
    expect(layers.some((l) => l.text === 'L0')).toBe(true);
    for (let i = 1; i < layers.length; i++) expect(layers[i].y).toBeLessThan(layers[i - 1].y);
    // Token axis: one label per visible column, in prompt order, left to right, not overlapping.
    const toks = await page.locator(tid('token-label')).evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return { full: e.getAttribute('title') ?? '', x0: r.left, x1: r.right };
      }),
    );
    expect(toks.length).toBeGreaterThan(0);
    const order = toks.map((t) => view.promptTokens.indexOf(t.full));
    expect(order.every((o) => o >= 0)).toBe(true);
    for (let i = 1; i < toks.length; i++) expect(toks[i].x0).toBeGreaterThanOrEqual(toks[i - 1].x1 - 0.5);
    expect(trace.prompt.length).toBeGreaterThan(0);
    // Labels: none overlap, and sigma draws only placed ones.
    const n = await checkLabels();
    expect(n).toBeGreaterThan(0);
    const extra = await page.evaluate(() => {
      const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
      const placed = new Set(c.placeLabelsNow().map((b) => b.id));
      return [...c.instance.getNodeDisplayedLabels()].filter((id) => !placed.has(id));
    });
    expect(extra).toEqual([]);
    // Logit chips: probabilities as percentages (two significant digits).
    const chips = await page.locator(tid('logit-chip')).allTextContents();
    expect(chips.length).toBeGreaterThan(0);
    for (const c of chips) expect(c).toMatch(/\d(\.\d+)?%\s*$/);
    await shot('graph-view-demo');
  });

  it('dims the rest on hover, shows an edge weight, follows the link direction, clears on Esc', async () => {
    const before = await page.evaluate(() =>
      [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0].counts(),
    );
    expect(await canvasInk()).toBeGreaterThan(0.002);
    const t = await hoverTarget();
    await page.mouse.move(t.x, t.y);
    await page.locator(tid('tooltip')).waitFor();
    const state = () =>
      page.evaluate(() => {
        const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
        return { hovered: c.hoveredNode(), counts: c.counts() };
      });
    const during = await state();
    expect(during.hovered).toBe(t.id);
    // Dimmed, not hidden: every node is still drawn, and a node outside the neighbourhood
    // still shows (lighter) on screen.
    expect(during.counts.nodes).toBe(before.nodes);
    const other = await page.evaluate((hovered) => {
      const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
      const s = c.instance;
      const g = s.getGraph();
      const near = new Set([hovered, ...g.neighbors(hovered)]);
      const r = c.container.getBoundingClientRect();
      let found: { x: number; y: number } | null = null;
      g.forEachNode((id, a) => {
        if (found || near.has(id) || a.kind !== 'feature') return;
        const d = s.getNodeDisplayData(id);
        if (!d) return;
        const p = s.framedGraphToViewport(d);
        if (p.x > 20 && p.y > 20 && p.x < r.width - 20 && p.y < r.height - 20 && c.pick(p.x, p.y) === id)
          found = { x: p.x + r.left, y: p.y + r.top };
      });
      return found as { x: number; y: number } | null;
    }, t.id);
    if (other) {
      const png = decodePng(
        await page.screenshot({ clip: { x: other.x - 2, y: other.y - 2, width: 5, height: 5 } }),
      );
      expect(inkShare(png)).toBeGreaterThan(0.5);
    }
    await shot('graph-view-hover');
    // Esc clears the hover (tooltip gone, no neighbourhood left highlighted).
    await page.keyboard.press('Escape');
    await expect.poll(async () => (await state()).hovered).toBeNull();
    // Link direction: outputs only — re-hover and the highlighted set changes accordingly.
    await page.locator(tid('link-direction')).selectOption('out');
    await page.mouse.move(t.x + 200, t.y + 200);
    await page.mouse.move(t.x, t.y);
    await expect.poll(async () => (await state()).hovered).toBe(t.id);
    await page.locator(tid('link-direction')).selectOption('both');
    // Leaving the canvas clears it too.
    await page.mouse.move(5, 5);
    await expect.poll(async () => (await state()).hovered).toBeNull();
    // Edge hover: the midpoint of a drawn edge shows its weight.
    const mid = await page.evaluate(() => {
      const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
      const s = c.instance;
      const r = c.container.getBoundingClientRect();
      const g = s.getGraph() as unknown as {
        edges(): string[];
        source(e: string): string;
        target(e: string): string;
      };
      for (const e of g.edges()) {
        const a = s.getNodeDisplayData(g.source(e));
        const b = s.getNodeDisplayData(g.target(e));
        if (!a || !b) continue;
        const pa = s.framedGraphToViewport(a);
        const pb = s.framedGraphToViewport(b);
        if (Math.hypot(pb.x - pa.x, pb.y - pa.y) < 120) continue;
        const m = { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 };
        if (c.pick(m.x, m.y) !== null) continue;
        return { x: m.x + r.left, y: m.y + r.top };
      }
      return null;
    });
    if (mid) {
      await page.mouse.move(mid.x, mid.y);
      await page.locator(tid('edge-tooltip')).waitFor({ timeout: 5000 });
      expect(Number(await page.locator(tid('edge-weight')).textContent())).not.toBeNaN();
      await page.mouse.move(5, 5);
    }
  });

  it('lays out a 40-token prompt across the pane', async () => {
    const words =
      'the quick brown fox jumps over the lazy dog while the cat watches from a warm sunny window and the birds sing in the tall green trees near the quiet river';
    const prompt = model.demo ? words : Array.from({ length: 40 }, (_, i) => `w${4 + (i % 60)}`).join(' ');
    const id = await traceAndWait(prompt);
    await openTrace(id);
    const view = await api.call('graphs.view', { traceId: id });
    expect(view.nPositions).toBeGreaterThanOrEqual(30);
    // The graph uses the pane's width and height: its nodes span most of the canvas both ways.
    const span = await page.evaluate(() => {
      const c = [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0];
      const s = c.instance;
      const r = c.container.getBoundingClientRect();
      let x0 = Number.POSITIVE_INFINITY;
      let x1 = Number.NEGATIVE_INFINITY;
      let y0 = Number.POSITIVE_INFINITY;
      let y1 = Number.NEGATIVE_INFINITY;
      s.getGraph().forEachNode((id) => {
        const d = s.getNodeDisplayData(id);
        if (!d) return;
        const p = s.framedGraphToViewport(d);
        x0 = Math.min(x0, p.x);
        x1 = Math.max(x1, p.x);
        y0 = Math.min(y0, p.y);
        y1 = Math.max(y1, p.y);
      });
      return { w: (x1 - x0) / r.width, h: (y1 - y0) / r.height };
    });
    expect(span.w).toBeGreaterThan(0.7);
    expect(span.h).toBeGreaterThan(0.7);
    await checkLabels();
    await shot('graph-view-40-tokens');
    // Expanding the empty positions widens the frame (more token labels or wider columns).
    const collapsed = await page.locator(tid('token-label')).count();
    await page.locator(tid('collapse-empty')).uncheck();
    await page.waitForTimeout(500);
    expect(await page.locator(tid('token-label')).count()).toBeGreaterThanOrEqual(collapsed);
    await page.locator(tid('collapse-empty')).check();
  });

  it('draws a 10k-node / 100k-edge graph with an edge budget, hovers and picks on the CPU', async () => {
    const json = syntheticGraphJson(10_000, 100_000);
    const { trace } = await api.call('graphs.importJson', { json, fileName: 'synthetic-10k.json' });
    await openTrace(trace.id);
    const counts = await page.evaluate(() =>
      [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0].counts(),
    );
    expect(counts.big).toBe(true);
    expect(counts.sceneEdges).toBeGreaterThan(20_000);
    expect(counts.edges).toBeLessThanOrEqual(5_000);
    await expect.poll(() => page.locator(tid('show-all-edges')).count()).toBe(1);
    await checkLabels();
    await shot('graph-view-10k-100k');
    // Hover adds the node's links to what is drawn, and dims the rest.
    const t = await hoverTarget();
    const t0 = Date.now();
    await page.mouse.move(t.x, t.y);
    await expect
      .poll(() =>
        page.evaluate(() => [...((globalThis as CanvasHost).__circuitCanvases ?? [])][0].hoveredNode()),
      )
      .toBe(t.id);
    expect(Date.now() - t0).toBeLessThan(5000);
    await shot('graph-view-10k-100k-hover');
    await page.keyboard.press('Escape');
    expect(pageErrors).toEqual([]);
  });
});
