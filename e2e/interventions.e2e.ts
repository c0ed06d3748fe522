/**
 * End to end, interventions: pin a feature, ablate it and read the predictions before and after
 * with the graph highlighted; the same edit as scale ×0 and set 0; the run history; the open
 * loop. The built UI in Debian's Chromium against a real `circuit serve`; the trace is seeded
 * through the API. The tests continue one session in the intervention panel (each edits the
 * draft the one before left); run alone, a test builds that state itself.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../electron/api/contract.ts';
import { fmtProb } from '../renderer/src/util/format.ts';
import { chromiumAvailable } from './helpers/browser.ts';
import type { E2EModel } from './helpers/model.ts';
import type { RunningServer } from './helpers/server.ts';
import {
  canvasInk,
  closeAll,
  countOf,
  mainPaneNodeAttribute,
  openTrace,
  pinFromSearch,
  shot,
  tid,
  tracedWorkbench,
} from './helpers/workbench.ts';

let server: RunningServer;
let browser: Browser;
let page: Page;
let api: ApiClient;
let model: E2EModel;
/** The trace the interventions run on (no pins before the first test). */
let ivTraceId = 0;
let ivFeature = '';
let ivTopToken = '';
const pageErrors: string[] = [];

// A test run alone first runs the ablation itself; a cold intervention on a busy machine can
// take most of the default two minutes.
describe.skipIf(!chromiumAvailable())('interventions', { timeout: 240_000 }, () => {
  beforeAll(async () => {
    ({
      server,
      api,
      model,
      browser,
      page,
      trace: { id: ivTraceId },
    } = await tracedWorkbench(pageErrors, {
      settings: () => ({ nodeThreshold: 0.9 }),
    }));
  });

  afterAll(() => closeAll({ server, api }, browser));
  // Nothing the page threw during a test goes unnoticed.
  afterEach(() => expect(pageErrors).toEqual([]));

  /**
   * The nodes the tests edit: the most important feature, and the top logit (whose token is the
   * model's expected one).
   */
  async function targets() {
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
    return { view, feat, logit };
  }

  /**
   * The panel open on the trace with the feature's ablation shown, as the first test leaves it;
   * built here (pins through the API, one ablation from the panel) when that test did not run.
   */
  async function ablationShown(): Promise<void> {
    const shown = page.locator(`${tid('intervene-result')}[data-intervention-id]`);
    if (ivFeature && (await shown.count()) > 0) return;
    const { feat, logit } = await targets();
    await api.call('annotations.update', { traceId: ivTraceId, pinned: [feat.id, logit.id] });
    await openTrace(page, server, ivTraceId);
    await page.locator(tid('intervene-button')).click();
    await page.locator(tid('intervention-panel')).waitFor();
    await page.locator(tid('intervene-row')).first().locator(tid('intervene-mode')).selectOption('ablate');
    await runIntervention();
  }

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
    await page.goto(server.url);
    await page.locator(tid('connection-status')).filter({ hasText: 'connected' }).waitFor();
    await page.locator(`[data-trace-id="${ivTraceId}"]`).locator('button.prompt').click();
    await expect
      .poll(() => page.locator(`${tid('library-item')}.open`).getAttribute('data-trace-id'))
      .toBe(String(ivTraceId));
    await expect.poll(() => countOf(page, 'graph-node-count'), { timeout: 30_000 }).toBeGreaterThan(0);
    const { view, feat, logit } = await targets();
    // Pin the feature, and the top logit (not interventionable: skipped with a note).
    for (const id of [feat.id, logit.id]) await pinFromSearch(page, id);
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
    await expect.poll(() => mainPaneNodeAttribute(page, feat.id)).toBe('#7c3aed');
    // Logits show their probability before → after.
    expect(await mainPaneNodeAttribute(page, logit.id, 'label')).toContain(
      `${fmtProb(top!.probBefore)}→${fmtProb(top!.probAfter)}`,
    );
    expect(await canvasInk(page, tid('graph-view'))).toBeGreaterThan(0.002);
    // Room for the graph in the screenshot: the subgraph pane (opened by the pins) closes.
    if ((await page.locator(tid('subgraph-pane')).count()) > 0)
      await page.locator(tid('subgraph-button')).click();
    await page.locator(tid('fit-button')).click();
    await shot(page, 'intervention-ablate');
    // Clear restores the normal colours; the checkbox brings the highlight back.
    await page.locator(tid('intervene-clear-highlight')).click();
    await expect.poll(() => mainPaneNodeAttribute(page, feat.id)).toBe('#e07b24');
    expect(await page.locator(tid('intervene-highlight')).count()).toBe(0);
    await page.locator(tid('intervene-highlight-toggle')).check();
    await expect.poll(() => mainPaneNodeAttribute(page, feat.id)).toBe('#7c3aed');
  });

  it('scales the feature by ×0 and sets it to 0 (both as the ablation), then lists and deletes runs', async () => {
    await ablationShown();
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
    await shot(page, 'intervention-history');

    await history.first().locator(tid('intervene-delete')).click();
    await history.first().locator(tid('intervene-confirm-delete')).click();
    await expect.poll(() => history.count()).toBe(2);
    const listed = await api.call('interventions.list', { traceId: ivTraceId });
    expect(listed.map((r) => r.id)).not.toContain(set);
    expect(listed.map((r) => r.id)).toEqual([scaled, shownId]);
    expect(pageErrors).toEqual([]);
  });

  it('runs the same ablation open loop: downstream features coloured by their direct input change', async () => {
    await ablationShown();
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
    for (const c of inputs) if ((await mainPaneNodeAttribute(page, c.nodeId)) !== null) drawn.push(c);
    expect(drawn.length).toBeGreaterThan(0);
    const biggest = drawn[0];
    await expect.poll(() => mainPaneNodeAttribute(page, biggest.nodeId)).not.toBe('#e07b24');
    expect(await mainPaneNodeAttribute(page, biggest.nodeId)).not.toBe('#7c3aed');
    expect(await mainPaneNodeAttribute(page, ivFeature)).toBe('#7c3aed');
    const listed = page.locator(`${tid('intervene-feature-changes')} li`);
    expect(await listed.count()).toBeGreaterThan(1);
    expect((await listed.allTextContents()).some((t) => /in -?\d/.test(t))).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
