/**
 * Live rows: each layer of a backward run computes only the targets that read above it (their
 * gradient is zero below their own slot otherwise), the batch ordered by slot and `live_rows`
 * counted (linear-model.ts emitBackwardGraph). Checked: the counts; that the runs really shrink
 * (each attr_l has exactly the targets reading above layer l, fewer than the batch in some
 * runs); and that the graph equals running every target through every layer (to rounding), in the CPU's form
 * and the GPU providers' (select injection, joined and gathered outputs), for the demo's CLT
 * (features written at several layers) and PLT. (W_skip's path, and every family, are checked
 * against the PyTorch goldens in attribution.test.ts, which run live rows too.)
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import { finalSlot, liveRowCounts } from '../../../electron/engine/attribution/linear-model.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { ort } from '../../../electron/engine/runtime/session.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { expectSameDemoGraph } from '../../fixtures/graph-compare.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
// A prompt of the demo's vocabulary (2304 tokens), BOS first.
const IDS = [2, 651, 637, 576, 2029, 1751, 1234, 603, 99];

describe('liveRowCounts', () => {
  it('counts, per slot, the targets reading there or above', () => {
    // L = 2: slots 0 … 4 (4 = the logits).
    expect(liveRowCounts([4, 3, 3, 1], 2)).toEqual([4, 4, 3, 3, 1]);
    expect(liveRowCounts([1, 1], 2)).toEqual([2, 2, 0, 0, 0]);
    expect(liveRowCounts([], 2)).toEqual([0, 0, 0, 0, 0]);
    expect(liveRowCounts([4], 2)).toHaveLength(finalSlot(2) + 1);
  });

  it('refuses targets not ordered by slot, highest first (their rows would not be a prefix)', () => {
    expect(() => liveRowCounts([1, 3], 2)).toThrow(/ordered by slot/);
  });
});

type RunFn = (this: ort.InferenceSession, ...args: unknown[]) => Promise<Record<string, ort.Tensor>>;

describe('live rows in the backward', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('each attr_l holds exactly the targets reading above layer l, fewer than the batch in some runs', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'plt'));
    const L = model.config.nLayers;
    const sessionProto = (ort.InferenceSession as unknown as { prototype: { run: RunFn } }).prototype;
    const run = sessionProto.run;
    const seen: { slots: number[]; attrRows: number[] }[] = [];
    sessionProto.run = async function (this: ort.InferenceSession, ...args: unknown[]) {
      const out = await run.apply(this, args);
      const feeds = args[0] as Record<string, ort.Tensor>;
      if (feeds.read_slots) {
        const slots = Array.from(feeds.read_slots.data as BigInt64Array, Number);
        const attrRows: number[] = [];
        for (let l = 0; out[`attr_${l}`]; l++) attrRows.push(out[`attr_${l}`].dims[1]);
        seen.push({ slots, attrRows });
      }
      return out;
    };
    const a = await Attributor.create(model, set);
    try {
      await a.attribute(IDS, { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 16, maxFeatureNodes: 100 });
    } finally {
      sessionProto.run = run;
      await a.close();
      set.close();
      model.close();
    }
    expect(seen.length).toBeGreaterThan(3);
    let trimmed = 0;
    for (const { slots, attrRows } of seen) {
      for (const [l, rows] of attrRows.entries()) {
        // Layer l's MLP write reaches the targets reading at resid_pre(l + 1) or above.
        expect(rows).toBe(slots.filter((s) => s >= 2 * l + 2).length);
        if (rows < slots.length) trimmed++;
      }
      expect(Math.max(...slots)).toBeLessThanOrEqual(finalSlot(L));
    }
    expect(trimmed).toBeGreaterThan(0);
  });

  /** The graph with CIRCUIT_BACKWARD_ROWS=all (every target through every layer) against live rows, in the form `env` sets. */
  const expectLiveEqualsAll = (env: Record<string, string>) =>
    expectSameDemoGraph('CIRCUIT_BACKWARD_ROWS', 'all', 'live', env);

  it('gives the graph of every target through every layer, within 1e-6 of each row’s scale (CPU form)', async () => {
    await expectLiveEqualsAll({});
  });

  it('gives the graph of every target through every layer, within 1e-6 (GPU form: select, rows)', async () => {
    await expectLiveEqualsAll({
      CIRCUIT_BACKWARD_INJECTION: 'select',
      CIRCUIT_BACKWARD_OUTPUTS: 'rows',
      CIRCUIT_BACKWARD_CONSTANTS: 'prompt',
    });
  });

  it('gives the graph of every target through every layer, within 1e-6 (joined outputs)', async () => {
    await expectLiveEqualsAll({ CIRCUIT_BACKWARD_OUTPUTS: 'joined' });
  });
});
