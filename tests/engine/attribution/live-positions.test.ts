/**
 * Live positions: a backward run covers positions 0 … t − 1, but a target at position p has a
 * zero gradient after p, so each layer's projections run only on the live (position, row) pairs,
 * gathered before them and spread back after (linear-model.ts BackwardPositions, livePairs).
 * Checked: the host-made indices; that runs really hold fewer pairs than t × rows; and that the
 * graph equals running every position (to rounding, with the same pruned nodes) in the CPU's
 * form and the GPU providers' (select injection, gathered rows, prompt constants, f16 aside),
 * with and without live rows, for the demo's CLT and PLT. (Every family, W_skip included, is
 * checked against the PyTorch goldens in attribution.test.ts, which run live positions too.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { finalSlot, livePairs, liveRowCounts } from '../../../electron/engine/attribution/linear-model.ts';
import { expectSameDemoGraph, traceDemoWatchingBackward } from '../../fixtures/graph-compare.ts';

describe('livePairs', () => {
  // L = 2 (slots 0 … 4), t = 3; rows ordered by slot: a logit target at 2, features reading at
  // resid_mid of layer 1 (position 0) and of layer 0 (position 1).
  const positions = [2, 0, 1];
  const rows = liveRowCounts([4, 3, 1], 2); // [3, 3, 2, 2, 1]
  const pairs = livePairs(positions, rows, 2, 3);

  it('lists each row’s positions up to its target’s, row by row', () => {
    expect(pairs.pairs).toBe(3 + 1 + 2);
    // index [t, B]: row 0 at places 0..2, row 1 at 3, row 2 at 4..5; −1 after a row's target.
    expect(Array.from(pairs.index)).toEqual([0, 3, 4, 1, -1, 5, 2, -1, -1]);
  });

  it('gives each layer the places of its rows’ live pairs in the gradient [t, rows] flattened, then a dead one', () => {
    // Layer 0's attention runs on live_rows[1] = 3 rows: place p·3 + b, in list order, then
    // (position 2, row 1), dead (row 1's target is at 0): what the index's −1s read.
    expect(Array.from(pairs.gather.subarray(0, 7))).toEqual([0, 3, 6, 1, 2, 5, 2 * 3 + 1]);
    // Layer 1's on live_rows[3] = 2 rows: rows 0 and 1 (4 pairs), the dead (2, 1), then padding.
    expect(Array.from(pairs.gather.subarray(7, 14))).toEqual([0, 2, 4, 1, 2 * 2 + 1, 0, 0]);
    expect(pairs.counts).toEqual([7, 5]);
  });

  it('lists no dead pair where a layer’s rows have none (no −1 among them)', () => {
    // Layer 1 runs on row 0 alone, at the last position: every pair live.
    const one = livePairs(positions, liveRowCounts([4, 1, 1], 2), 2, 3);
    expect(one.counts).toEqual([7, 3]);
    expect(Array.from(one.gather.subarray(7, 10))).toEqual([0, 1, 2]);
  });

  it('a list for fewer rows is the prefix of the list for all (one index serves every layer)', () => {
    const all = livePairs(positions, new Array<number>(finalSlot(2) + 1).fill(3), 2, 3);
    expect(all.counts).toEqual([7, 7]);
    expect(Array.from(all.index)).toEqual(Array.from(pairs.index));
  });

  it('refuses a position outside the run and live rows beyond the batch', () => {
    expect(() => livePairs([3], [1, 1, 1, 1, 1], 2, 3)).toThrow(/position 3, outside 0..2/);
    expect(() => livePairs([0], [2, 2, 2, 2, 2], 2, 3)).toThrow(/2 live rows at layer 0 of 1/);
  });
});

describe('live positions in the backward', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('runs fewer pairs than positions × rows where a batch mixes positions', async () => {
    const seen: { pairs: number[]; dense: number[] }[] = [];
    await traceDemoWatchingBackward('clt', (feeds) => {
      const rows = Array.from(feeds.live_rows.data as BigInt64Array, Number);
      const t = feeds.live_pair_index.dims[0];
      const L = feeds.live_pair_counts.dims[0];
      seen.push({
        pairs: Array.from(feeds.live_pair_counts.data as BigInt64Array, Number),
        dense: Array.from({ length: L }, (_, l) => t * rows[2 * l + 1]),
      });
    });
    expect(seen.length).toBeGreaterThan(3);
    let fewer = 0;
    for (const { pairs, dense } of seen) {
      for (const [l, n] of pairs.entries()) {
        expect(n).toBeLessThanOrEqual(dense[l]);
        if (n < dense[l]) fewer++;
      }
    }
    expect(fewer).toBeGreaterThan(0);
  });

  /** The graph with CIRCUIT_BACKWARD_POSITIONS=all against live ones, in the form `env` sets. */
  const expectLiveEqualsAll = (env: Record<string, string>) =>
    expectSameDemoGraph('CIRCUIT_BACKWARD_POSITIONS', 'all', 'live', env);

  it('gives the graph of every position, within 1e-6 of each row’s scale (CPU form)', async () => {
    await expectLiveEqualsAll({});
  });

  it('gives the graph of every position, within 1e-6 (GPU form: select, rows, prompt constants)', async () => {
    await expectLiveEqualsAll({
      CIRCUIT_BACKWARD_INJECTION: 'select',
      CIRCUIT_BACKWARD_OUTPUTS: 'rows',
      CIRCUIT_BACKWARD_CONSTANTS: 'prompt',
    });
  });

  it('gives the graph of every position, within 1e-6 (every row through every layer; MatMul projections)', async () => {
    await expectLiveEqualsAll({ CIRCUIT_BACKWARD_ROWS: 'all', CIRCUIT_BACKWARD_PROJECTION: 'matmul' });
  });
});
