/**
 * End to end: the built UI in Debian's Chromium (playwright-core, SwiftShader WebGL) against
 * the real backend (`circuit serve` on 127.0.0.1, ephemeral port, temporary library). One
 * server and one page for the whole file; the steps build on each other like a session.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient, FeatureRecord } from '../electron/api/contract.ts';
import { fmtProb } from '../renderer/src/util/format.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import { circuitTracerJson, HOSTILE_LABEL } from './helpers/graph-json.ts';
import type { E2EModel } from './helpers/model.ts';
import { decodePng, inkShare } from './helpers/png.ts';
import type { RunningServer } from './helpers/server.ts';
import { closeAll, openPage, registerModel, SHOTS, startBackend, tid } from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
let traceId = 0;
const pageErrors: string[] = [];

async function count(p: Page | ReturnType<Page['locator']>, id: string): Promise<number> {
  return Number(await p.locator(tid(id)).first().textContent());
}

async function shot(name: string): Promise<void> {
  await page.waitForTimeout(250);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Share of non-white pixels in the element: the WebGL canvas really drew something. */
async function canvasInk(selector: string): Promise<number> {
  const png = await page.locator(selector).first().screenshot();
  return inkShare(decodePng(png));
}

describe.skipIf(!chromiumAvailable())('workbench UI', () => {
  beforeAll(async () => {
    const b = await startBackend();
    ({ server, api, model } = b);
    // The demo model is not installed: register the fixture (the UI registers the demo itself).
    if (!model.demo) await registerModel(b, 'tiny-gemma2 (fixture)');
    ({ browser, page } = await openPage(server, pageErrors, {
      viewport: { width: 1600, height: 950 },
      acceptDownloads: true,
    }));
  });

  afterAll(() => closeAll({ server, api }, browser));

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
    await expect.poll(() => count(page, 'graph-node-count'), { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await count(page, 'graph-edge-count')).toBeGreaterThan(0);
    expect(await item.getAttribute('data-status')).toBe('done');
    traceId = Number(await item.getAttribute('data-trace-id'));
    expect(await page.evaluate(() => (globalThis as { __sawProgress?: boolean }).__sawProgress)).toBe(true);
    const chips = page.locator(tid('logit-chip'));
    expect(await chips.count()).toBeGreaterThan(0);
    if (model.expectLogit)
      await expect
        .poll(() => chips.allTextContents())
        .toContainEqual(expect.stringContaining(model.expectLogit.trim()));
    expect(await canvasInk(tid('graph-view'))).toBeGreaterThan(0.002);
    await shot('graph-view');
  });

  it('searches the library by prompt', async () => {
    const word = model.prompt.split(' ')[1];
    await page.locator(tid('library-search')).fill(word);
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(1);
    await page.locator(tid('library-search')).fill('no such prompt at all');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(0);
    await page.locator(tid('library-search')).fill('');
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(1);
    await shot('library');
  });

  it('opens a node via search and shows its edges and feature card in the inspector', async () => {
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
    const before = await count(page, 'graph-node-count');
    await page.locator(tid('node-threshold')).fill('0.3');
    await expect.poll(() => count(page, 'graph-node-count')).toBeLessThan(before);
    await page.locator(tid('node-threshold')).fill(model.demo ? '0.8' : '0.95');
    await expect.poll(() => count(page, 'graph-node-count')).toBe(before);
    // Looser than the stored view: the API re-prunes from the unpruned graph and stores the view.
    await page.locator(tid('node-threshold')).fill('0.99');
    await expect
      .poll(async () => (await api.call('graphs.views', { traceId })).some((v) => v.nodeThreshold === 0.99))
      .toBe(true);
    await expect.poll(() => count(page, 'graph-node-count')).toBeGreaterThanOrEqual(before);
    // Back to the trace's threshold: filtered from the looser stored view (an approximation of the
    // API's own pruning at that threshold, close to it).
    await page.locator(tid('node-threshold')).fill(model.demo ? '0.8' : '0.95');
    await expect
      .poll(() => page.locator(tid('node-threshold-value')).textContent())
      .toBe(model.demo ? '0.80' : '0.95');
    expect(await count(page, 'graph-node-count')).toBeGreaterThan(0);
  });

  it('hovers, clicks and Ctrl-clicks nodes in the WebGL canvas', async () => {
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
    await page.mouse.click(pos.x, pos.y);
    await page.keyboard.up('Control');
    await expect.poll(pinned).not.toContain(pos.id);
    await page.mouse.move(5, 5);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator(tid('inspector')).count()).toBe(0);
  });

  it('compares the trace at two thresholds side by side', async () => {
    await page.locator(tid('fit-button')).click();
    await page.locator(tid('compare-button')).click();
    const panes = page.locator(tid('compare-pane'));
    await expect.poll(() => panes.count()).toBe(2);
    await panes.nth(1).locator(tid('node-threshold')).fill('0.4');
    await expect
      .poll(
        async () =>
          (await count(panes.nth(0), 'graph-node-count')) - (await count(panes.nth(1), 'graph-node-count')),
      )
      .toBeGreaterThan(0);
    expect(await panes.nth(0).locator(tid('node-threshold-value')).textContent()).toBe(
      model.demo ? '0.80' : '0.95',
    );
    expect(await panes.nth(1).locator(tid('node-threshold-value')).textContent()).toBe('0.40');
    expect(
      Number((await panes.nth(0).locator(tid('marked-count')).textContent())?.replace(/\D+/g, '')),
    ).toBeGreaterThan(0);
    expect(await canvasInk(`${tid('compare-pane')} >> nth=1 >> ${tid('graph-view')}`)).toBeGreaterThan(0.001);
    await shot('compare-view');
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

  it('pins two nodes, groups and labels them, and keeps the group after a reload', async () => {
    const view = await api.call('graphs.view', { traceId });
    // Two connected features (the strongest feature → feature edge), then the top logit.
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
    const pin = async (id: string) => {
      await page.locator(tid('node-search')).fill(id);
      await page.locator(tid('node-search-result')).first().click();
      await expect.poll(() => page.locator(tid('inspector')).textContent()).toContain(id);
      await page.locator(tid('pin-button')).click();
      await expect.poll(() => page.locator(tid('pin-button')).textContent()).toBe('Unpin');
    };
    for (const f of pair) await pin(f.id);
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
    // More context for the subgraph: the logit, the strongest token input of the group, and
    // the most influential other feature.
    let tokenIn = -1;
    for (let e = 0; e < view.edges.source.length; e++) {
      if (
        view.nodes[view.edges.source[e]].kind !== 'token' ||
        !pair.includes(view.nodes[view.edges.target[e]])
      )
        continue;
      if (tokenIn < 0 || Math.abs(view.edges.weight[e]) > Math.abs(view.edges.weight[tokenIn])) tokenIn = e;
    }
    const extra = [logit];
    if (tokenIn >= 0) extra.push(view.nodes[view.edges.source[tokenIn]]);
    const other = view.nodes
      .filter((n) => n.kind === 'feature' && !pair.includes(n))
      .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1))[0];
    if (other) extra.push(other);
    for (const n of extra) await pin(n.id);
    expect(await canvasInk(tid('subgraph-view'))).toBeGreaterThan(0.001);
    await page.reload();
    await page.locator(tid('subgraph-pane')).waitFor();
    await expect
      .poll(() => page.locator(tid('supernode-item')).allTextContents())
      .toContainEqual(expect.stringContaining('Texas cities (2)'));
    await page.locator(tid('fit-button')).click();
    await page.waitForTimeout(300);
    await shot('subgraph-pane');
    const ann = await api.call('annotations.get', { traceId });
    expect(ann.pinned.sort()).toEqual([...pair, ...extra].map((f) => f.id).sort());
    expect(ann.supernodes).toEqual([
      { label: 'Texas cities', nodeIds: expect.arrayContaining(pair.map((f) => f.id)) },
    ]);
  });

  it('exports the subgraph as PNG at the chosen size and as SVG with its labels', async () => {
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

  it('imports a circuit-tracer graph JSON and shows it, with untrusted text as text', async () => {
    await page.locator(tid('import-json')).setInputFiles({
      name: 'the-cat.json',
      mimeType: 'application/json',
      buffer: Buffer.from(circuitTracerJson()),
    });
    await expect.poll(() => page.locator(tid('library-item')).count()).toBe(2);
    await expect.poll(() => count(page, 'graph-node-count')).toBe(10);
    expect(await count(page, 'graph-edge-count')).toBe(10);
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
    expect(await canvasInk(tid('graph-view'))).toBeGreaterThan(0.001);
    await shot('imported-graph');
    expect(pageErrors).toEqual([]);
  });

  it('re-traces with changed settings, deletes with confirmation and undoes the delete', async () => {
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

  // Interventions run on the re-traced prompt (a trace without pins yet).
  let ivTraceId = 0;
  let ivFeature = '';
  let ivTopToken = '';

  /** The colour sigma draws a node with in the main pane (null when the node is not drawn). */
  const drawnColor = (id: string, attribute = 'color') =>
    page.evaluate(
      ([nodeId, attr]) => {
        type C = {
          container: HTMLElement;
          instance: {
            getGraph(): { hasNode(n: string): boolean; getNodeAttribute(n: string, a: string): string };
          };
        };
        const c = [...((globalThis as { __circuitCanvases?: Set<C> }).__circuitCanvases ?? [])].find(
          (x) => x.container.closest('[data-testid="main-pane"]') !== null,
        );
        const g = c?.instance.getGraph();
        return g?.hasNode(nodeId) ? g.getNodeAttribute(nodeId, attr) : null;
      },
      [id, attribute] as const,
    );

  /** Runs the panel's draft and waits for its result; returns the new intervention's id. */
  async function runIntervention(): Promise<number> {
    const history = page.locator(tid('intervene-history-item'));
    const before = await history.count();
    await page.locator(tid('intervene-run')).click();
    await expect.poll(() => history.count()).toBe(before + 1);
    const id = Number(await history.first().getAttribute('data-intervention-id'));
    await page
      .locator(`${tid('intervene-result')}[data-intervention-id="${id}"]`)
      .waitFor({ timeout: 120_000 });
    return id;
  }

  it('pins a feature, ablates it, and shows the predictions before and after with the graph highlighted', async () => {
    const { traces } = await api.call('traces.list', { status: 'done' });
    const fresh = traces.find((t) => t.source === 'trace' && t.id !== traceId);
    expect(fresh).toBeDefined();
    ivTraceId = fresh!.id;
    await page.locator(`[data-trace-id="${ivTraceId}"]`).locator('button.prompt').click();
    await expect
      .poll(() => page.locator(`${tid('library-item')}.open`).getAttribute('data-trace-id'))
      .toBe(String(ivTraceId));
    await expect.poll(() => count(page, 'graph-node-count'), { timeout: 30_000 }).toBeGreaterThan(0);
    const view = await api.call('graphs.view', { traceId: ivTraceId });
    const feat = view.nodes
      .filter((n) => n.kind === 'feature')
      .sort((a, b) => (a.influence ?? 1) - (b.influence ?? 1))[0];
    const logit = view.nodes
      .filter((n) => n.kind === 'logit')
      .sort((a, b) => (b.probability ?? 0) - (a.probability ?? 0))[0];
    expect(feat).toBeDefined();
    ivFeature = feat.id;
    ivTopToken = model.expectLogit ?? (logit.token as string);
    expect(logit.token).toBe(ivTopToken);
    // Pin the feature, and the top logit (not interventionable: skipped with a note).
    for (const id of [feat.id, logit.id]) {
      await page.locator(tid('node-search')).fill(id);
      await page.locator(tid('node-search-result')).first().click();
      await expect.poll(() => page.locator(tid('inspector')).textContent()).toContain(id);
      await page.locator(tid('pin-button')).click();
      await expect.poll(() => page.locator(tid('pin-button')).textContent()).toBe('Unpin');
    }
    await page.keyboard.press('Escape');

    await page.locator(tid('intervene-button')).click();
    const panel = page.locator(tid('intervention-panel'));
    await panel.waitFor();
    const rows = panel.locator(tid('intervene-row'));
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-node-id')).toBe(feat.id);
    expect(await panel.locator(tid('intervene-skipped')).textContent()).toContain(logit.id);
    // The position picker offers every prompt position after BOS, the node's own selected.
    expect(await rows.first().locator(tid('intervene-position')).inputValue()).toBe(String(feat.position));
    expect(
      await rows
        .first()
        .locator(`${tid('intervene-position')} option`)
        .count(),
    ).toBe(view.promptTokens.length - 1);
    await rows.first().locator(tid('intervene-mode')).selectOption('ablate');
    expect(await rows.first().locator(tid('intervene-value')).isDisabled()).toBe(true);
    const id = await runIntervention();

    // The record as the API stores it, and the table showing it.
    const rec = await api.call('interventions.get', { id });
    expect(rec.status).toBe('done');
    expect(rec.traceId).toBe(ivTraceId);
    expect(rec.spec.edits).toEqual([
      { layer: feat.layer, feature: feat.index, position: feat.position, mode: 'ablate' },
    ]);
    const top = rec.result!.predictions.find((p) => p.token === ivTopToken);
    expect(top).toBeDefined();
    expect(top!.probBefore).toBeCloseTo(logit.probability ?? 0, 2);
    const result = page.locator(tid('intervene-result'));
    const row = result.locator(`${tid('intervene-prediction')}[data-token="${ivTopToken}"]`);
    expect(await row.count()).toBe(1);
    expect(await row.locator(tid('prediction-token')).textContent()).toContain(ivTopToken.trim());
    for (const [cell, value] of [
      ['prob-before', top!.probBefore],
      ['prob-after', top!.probAfter],
    ] as const) {
      const el = row.locator(tid(cell));
      expect(Number(await el.getAttribute('data-value'))).toBe(value);
      expect(await el.textContent()).toContain(`${(value * 100).toFixed(1)}%`);
    }
    expect(await result.locator(tid('intervene-prediction')).count()).toBe(rec.result!.predictions.length);
    expect(await page.locator(tid('intervene-history-item')).count()).toBe(1);

    // The graph highlights the result: the edited feature violet, the legend above the graph.
    await page.locator(tid('intervene-highlight')).waitFor();
    await expect.poll(() => drawnColor(feat.id)).toBe('#7c3aed');
    // Logits show their probability before → after.
    expect(await drawnColor(logit.id, 'label')).toContain(
      `${fmtProb(top!.probBefore)}→${fmtProb(top!.probAfter)}`,
    );
    expect(await canvasInk(tid('graph-view'))).toBeGreaterThan(0.002);
    // Room for the graph in the screenshot: the subgraph pane (open since the pins test) closes.
    if ((await page.locator(tid('subgraph-pane')).count()) > 0)
      await page.locator(tid('subgraph-button')).click();
    await page.locator(tid('fit-button')).click();
    await shot('intervention-ablate');
    // Clear restores the normal colours; the checkbox brings the highlight back.
    await page.locator(tid('intervene-clear-highlight')).click();
    await expect.poll(() => drawnColor(feat.id)).toBe('#e07b24');
    expect(await page.locator(tid('intervene-highlight')).count()).toBe(0);
    await page.locator(tid('intervene-highlight-toggle')).check();
    await expect.poll(() => drawnColor(feat.id)).toBe('#7c3aed');
  });

  it('scales the feature by ×0 and sets it to 0 (both as the ablation), then lists and deletes runs', async () => {
    expect(ivFeature).not.toBe('');
    const row = page.locator(tid('intervene-row')).first();
    const afterText = async () =>
      page
        .locator(`${tid('intervene-result')} ${tid('intervene-prediction')}[data-token="${ivTopToken}"]`)
        .locator(tid('prob-after'))
        .getAttribute('data-value')
        .then(Number);
    const ablated = await afterText();

    await row.locator(tid('intervene-mode')).selectOption('scale');
    await row.locator(tid('intervene-value')).fill('0');
    const scaled = await runIntervention();
    expect(await afterText()).toBeCloseTo(ablated, 6);
    const rs = await api.call('interventions.get', { id: scaled });
    expect(rs.spec.edits[0]).toMatchObject({ mode: 'scale', value: 0 });

    await row.locator(tid('intervene-mode')).selectOption('set');
    await row.locator(tid('intervene-value')).fill('0');
    const set = await runIntervention();
    expect(await afterText()).toBeCloseTo(ablated, 6);
    expect((await api.call('interventions.get', { id: set })).spec.edits[0]).toMatchObject({
      mode: 'set',
      value: 0,
    });

    // Newest first; picking an older run shows its result.
    const history = page.locator(tid('intervene-history-item'));
    expect(await history.count()).toBe(3);
    await history.nth(2).click();
    await page.locator(`${tid('intervene-result')}[data-intervention-id]`).waitFor();
    const shownId = Number(await page.locator(tid('intervene-result')).getAttribute('data-intervention-id'));
    expect(shownId).toBe(Number(await history.nth(2).getAttribute('data-intervention-id')));
    await shot('intervention-history');

    await history.first().locator(tid('intervene-delete')).click();
    await history.first().locator(tid('intervene-confirm-delete')).click();
    await expect.poll(() => history.count()).toBe(2);
    const listed = await api.call('interventions.list', { traceId: ivTraceId });
    expect(listed.map((r) => r.id)).not.toContain(set);
    expect(listed.map((r) => r.id)).toEqual([scaled, shownId]);
    expect(pageErrors).toEqual([]);
  });

  it('runs the same ablation open loop: downstream features coloured by their direct input change', async () => {
    const row = page.locator(tid('intervene-row')).first();
    await row.locator(tid('intervene-mode')).selectOption('ablate');
    await page.locator(tid('intervene-loop-open')).check();
    const id = await runIntervention();
    const rec = await api.call('interventions.get', { id });
    expect(rec.spec.loop).toBe('open');
    const inputs = rec.result!.featureChanges.filter((c) => c.quantity === 'input');
    expect(inputs.length).toBeGreaterThan(0);
    // Every activation but the edited one stays frozen.
    expect(
      rec.result!.featureChanges.filter((c) => c.quantity === 'activation').map((c) => c.nodeId),
    ).toEqual([ivFeature]);
    // A downstream node drawn in the view takes a change colour (not its kind's, not the edit's).
    const drawn: typeof inputs = [];
    for (const c of inputs) if ((await drawnColor(c.nodeId)) !== null) drawn.push(c);
    expect(drawn.length).toBeGreaterThan(0);
    const biggest = drawn[0];
    await expect.poll(() => drawnColor(biggest.nodeId)).not.toBe('#e07b24');
    expect(await drawnColor(biggest.nodeId)).not.toBe('#7c3aed');
    expect(await drawnColor(ivFeature)).toBe('#7c3aed');
    const listed = page.locator(`${tid('intervene-feature-changes')} li`);
    expect(await listed.count()).toBeGreaterThan(1);
    expect((await listed.allTextContents()).some((t) => /in -?\d/.test(t))).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('duplicates a trace, finds the traces that hold a feature, sizes features by activation', async () => {
    const items = page.locator(tid('library-item'));
    const before = await items.count();
    const original = page.locator(`[data-trace-id="${ivTraceId}"]`);
    await original.locator(tid('duplicate-button')).click();
    await expect.poll(() => items.count()).toBe(before + 1);
    const copyId = Number(await items.first().getAttribute('data-trace-id'));
    expect(copyId).not.toBe(ivTraceId);
    expect(await items.first().getAttribute('data-status')).toBe('done');
    const [a, b] = await Promise.all([
      api.call('traces.get', { id: ivTraceId }),
      api.call('traces.get', { id: copyId }),
    ]);
    expect(b.prompt).toBe(a.prompt);
    expect(b.graph?.nnz).toBe(a.graph?.nnz);
    expect((await api.call('annotations.get', { traceId: copyId })).pinned).toEqual(
      (await api.call('annotations.get', { traceId: ivTraceId })).pinned,
    );

    // "Traces with it": the library lists the traces whose graph holds the inspected feature.
    await page.locator(tid('node-search')).fill(ivFeature);
    await page.locator(tid('node-search-result')).first().click();
    await page.locator(tid('find-traces-button')).click();
    await page.locator(tid('library-feature-filter')).waitFor();
    const [layer, index] = ivFeature.split('_').map(Number);
    const want = await api.call('traces.list', {
      feature: { layer, index },
      transcoderSetId: a.transcoderSetId ?? undefined,
    });
    expect(want.traces.map((t) => t.id)).toEqual(expect.arrayContaining([ivTraceId, copyId]));
    await expect
      .poll(async () =>
        (await items.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-trace-id'))))).sort(),
      )
      .toEqual(want.traces.map((t) => t.id).sort());
    await page.locator(`${tid('library-feature-filter')} button`).click();
    await expect.poll(() => items.count()).toBe(before + 1);

    // Feature sizes by activation instead of influence: the glyphs are redrawn.
    const sizes = async () => {
      const ids = (await api.call('graphs.view', { traceId: ivTraceId })).nodes.map((n) => n.id);
      return Promise.all(ids.slice(0, 40).map((id) => drawnColor(id, 'size')));
    };
    const byInfluence = await sizes();
    await page.locator(tid('size-by')).selectOption('activation');
    await expect.poll(sizes).not.toEqual(byInfluence);
    await page.locator(tid('size-by')).selectOption('influence');
    await expect.poll(sizes).toEqual(byInfluence);
    expect(pageErrors).toEqual([]);
  });
});
