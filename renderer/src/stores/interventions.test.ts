/**
 * The interventions store against an in-memory backend (FakeInterventions): the draft from
 * pinned nodes, start → progress → done with the highlight, cancel, delete, the watchdog that
 * fetches a record whose events were lost, and the errors shown instead of a run.
 */
import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeApi, FakeInterventions } from '../api/fake-client.ts';
import { provideApi } from '../api/inject.ts';
import type { InterventionOutcome } from '../api/types.ts';
import { viewNode } from '../graph/testing.ts';
import { useInterventions } from './interventions.ts';

const TRACE = 7;
/** Prompt "<bos> The cat sat" (positions 1…3); two features, a logit and an error node. */
const VIEW = {
  nLayers: 4,
  promptTokens: ['<bos>', 'The', ' cat', ' sat'],
  nodes: [
    viewNode({ id: '1_17_2', kind: 'feature', layer: 1, index: 17, position: 2, activation: 3 }),
    viewNode({ id: '2_5_3', kind: 'feature', layer: 2, index: 5, position: 3, activation: 0.5 }),
    viewNode({ id: 'L_9_3', kind: 'logit', layer: 4, position: 3, token: ' on' }),
    viewNode({ id: 'E_1_2', kind: 'error', layer: 1, position: 2 }),
  ],
};
const OUTCOME = {
  loop: 'closed',
  predictions: [{ tokenId: 9, token: ' on', probBefore: 0.4, probAfter: 0.1 }],
  topBefore: [9],
  topAfter: [9],
  featureChanges: [],
} as unknown as InterventionOutcome;

let api: FakeApi;
let backend: FakeInterventions;
const flush = () => new Promise((r) => setTimeout(r, 0));

/** The store subscribed to the events, with a draft of the two features at their own positions. */
async function drafted() {
  const iv = useInterventions();
  iv.subscribe();
  iv.openDraft(TRACE, ['1_17_2', '2_5_3', 'L_9_3', 'E_1_2'], VIEW, '4 pinned nodes');
  await flush();
  return iv;
}

beforeEach(() => {
  // The watchdog's clock: its interval and Date.now (timeouts stay real for flush()).
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
  api = new FakeApi();
  backend = new FakeInterventions(api);
  provideApi(api);
  setActivePinia(createPinia());
});
afterEach(async () => {
  // Every test ends with nothing running: the watchdog (module state) sees that and stops, so
  // the next test starts its own.
  await vi.advanceTimersByTimeAsync(1000);
  vi.useRealTimers();
});

describe('interventions store', () => {
  it('drafts one row per feature (ablate at its own position) and skips the rest with the reason', async () => {
    const iv = await drafted();
    expect(iv.open).toBe(true);
    expect(iv.draft?.rows.map((r) => [r.nodeId, r.mode, r.position])).toEqual([
      ['1_17_2', 'ablate', 2],
      ['2_5_3', 'ablate', 3],
    ]);
    expect(iv.draft?.skipped.map((s) => [s.id, s.kind])).toEqual([
      ['L_9_3', 'logit'],
      ['E_1_2', 'error'],
    ]);
    // The trace's interventions were loaded with the draft.
    expect(api.paramsOf('interventions.list')).toEqual([{ traceId: TRACE }]);
    expect(iv.listOf(TRACE)).toEqual([]);
  });

  it('starts the draft, follows its progress to the result, and highlights it on the trace', async () => {
    const iv = await drafted();
    const row = iv.draft!.rows[1];
    iv.setMode(row.key, 'scale');
    expect(row.value).toBe(2);
    const rec = await iv.start();
    expect(api.paramsOf('interventions.start')).toEqual([
      {
        traceId: TRACE,
        edits: [
          { layer: 1, feature: 17, position: 2, mode: 'ablate' },
          { layer: 2, feature: 5, position: 3, mode: 'scale', value: 2 },
        ],
        loop: 'closed',
        top: 10,
        freezeAttention: false,
        generate: 0,
      },
    ]);
    expect(iv.shownId).toBe(rec!.id);
    expect(iv.listOf(TRACE).map((r) => [r.id, r.status])).toEqual([[rec!.id, 'queued']]);
    expect(iv.highlightFor(TRACE)).toBeNull();

    const progress = { phase: 'forward', done: 1, total: 2 };
    backend.progress(rec!.id, progress);
    expect(iv.progress[rec!.id]).toEqual(progress);
    expect(iv.listOf(TRACE)[0].status).toBe('running');
    backend.finish(rec!.id, OUTCOME);
    expect(iv.listOf(TRACE)[0].status).toBe('done');
    expect(iv.progress[rec!.id]).toBeUndefined();
    expect(iv.highlightFor(TRACE)?.result).toEqual(OUTCOME);
    expect(iv.highlightFor(TRACE + 1)).toBeNull();
    iv.highlight = false;
    expect(iv.highlightFor(TRACE)).toBeNull();
  });

  it('never moves a finished intervention back to running (a late event)', async () => {
    const iv = await drafted();
    const rec = (await iv.start())!;
    const late = backend.get(rec.id);
    await iv.cancel(rec.id);
    expect(iv.listOf(TRACE)[0].status).toBe('cancelled');
    api.emit('intervention.updated', { intervention: { ...late, status: 'running' } });
    expect(iv.listOf(TRACE)[0].status).toBe('cancelled');
  });

  it('fetches a record whose events were lost (the watchdog), and stops watching when all are finished', async () => {
    const iv = await drafted();
    const rec = (await iv.start())!;
    backend.finish(rec.id, OUTCOME, false);
    expect(iv.listOf(TRACE)[0].status).toBe('queued');
    await vi.advanceTimersByTimeAsync(3000);
    expect(api.paramsOf('interventions.get')).toEqual([{ id: rec.id }]);
    expect(iv.listOf(TRACE)[0].status).toBe('done');
    await vi.advanceTimersByTimeAsync(5000);
    expect(api.paramsOf('interventions.get')).toHaveLength(1);
  });

  it('deletes a run (or follows another client deleting it) and forgets the shown result', async () => {
    const iv = await drafted();
    const a = (await iv.start())!;
    const b = (await iv.start())!;
    expect(iv.listOf(TRACE).map((r) => r.id)).toEqual([b.id, a.id]);
    await iv.remove(b.id);
    expect(iv.listOf(TRACE).map((r) => r.id)).toEqual([a.id]);
    expect(iv.shownId).toBeNull();
    iv.show(a.id);
    await api.call('interventions.delete', { id: a.id });
    expect(iv.listOf(TRACE)).toEqual([]);
    expect(iv.shownId).toBeNull();
  });

  it('shows why a draft cannot run instead of running it, and the backend’s refusal', async () => {
    const iv = await drafted();
    const row = iv.draft!.rows[0];
    iv.setMode(row.key, 'set');
    row.value = null;
    expect(await iv.start()).toBeNull();
    expect(iv.startError).toBe('Fix the marked rows first.');
    expect(iv.problems.rows[row.key]).toBe('needs an activation value');
    expect(api.paramsOf('interventions.start')).toEqual([]);

    row.value = 6;
    api.handle('interventions.start', () => {
      throw new Error('the model is busy');
    });
    expect(await iv.start()).toBeNull();
    expect(iv.startError).toBe('the model is busy');
    expect(iv.starting).toBe(false);
  });
});
