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
import { afterEach, describe, expect, it, vi } from 'vitest';
import { finalSlot, liveRowCounts } from '../../../electron/engine/attribution/linear-model.ts';
import { expectSameDemoGraph, traceDemoWatchingBackward } from '../../fixtures/graph-compare.ts';

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

describe('live rows in the backward', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('each attr_l holds exactly the targets reading above layer l, fewer than the batch in some runs', async () => {
    const seen: { slots: number[]; attrRows: number[] }[] = [];
    let L = 0;
    await traceDemoWatchingBackward('plt', (feeds, out) => {
      const slots = Array.from(feeds.read_slots.data as BigInt64Array, Number);
      const attrRows: number[] = [];
      for (let l = 0; out[`attr_${l}`]; l++) attrRows.push(out[`attr_${l}`].dims[1]);
      L = (feeds.live_rows.dims[0] - 1) / 2;
      seen.push({ slots, attrRows });
    });
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
