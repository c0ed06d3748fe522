/**
 * Cutting a round of position-sorted targets into backward batches by predicted time
 * (batch-plan.ts): the dynamic programme finds the cheapest cuts (checked against every
 * composition of small rounds), keeps batches within [minRows, B], cuts at position changes
 * when runs cost nothing fixed and keeps batches full when they cost a lot, and by gemma-2-2b's
 * shapes cuts at positions; and a trace cut at every position change gives the graph of B-cuts
 * (to rounding) with the same pruned nodes.
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Attributor } from '../../../electron/engine/attribution/attribute.ts';
import {
  backwardCostModel,
  batchCuts,
  planBatchesByCost,
} from '../../../electron/engine/attribution/batch-plan.ts';
import {
  BatchCostModel,
  type PlannedBatch,
  planBatches,
  type RowWork,
} from '../../../electron/engine/attribution/eta.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { ort } from '../../../electron/engine/runtime/session.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { prunedNodes, worstRowDifference } from '../../fixtures/graph-compare.ts';
import { prng } from '../../fixtures/prng.ts';

const L = 4;
const LIVE_ROWS: RowWork = { liveRows: true, livePositions: false };
const LIVE_BOTH: RowWork = { liveRows: true, livePositions: true };
const total = (time: BatchCostModel, plan: PlannedBatch[]) => plan.reduce((s, b) => s + time.batchCost(b), 0);

/** A round of 1024 targets, sorted by position (1 … 10, about 100 each), of every layer of 26. */
function mixedRound(): { positions: number[]; layers: number[] } {
  const positions = Array.from({ length: 1024 }, (_, i) => 1 + Math.floor((i * 10) / 1024));
  return { positions, layers: positions.map((_, i) => (i * 7) % 26) };
}

/** The backward's cost by gemma-2-2b's shapes. */
const gemma2CostModel = () =>
  backwardCostModel({
    nLayers: 26,
    d: 2304,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 256,
    meanBlockWidth: 45,
    skip: false,
  });

/** The cheapest total over every way to cut the sorted round into batches of lo..B (brute force). */
function cheapest(
  positions: number[],
  layers: number[],
  B: number,
  lo: number,
  live: RowWork,
  time: BatchCostModel,
) {
  const order = Array.from(positions.keys()).sort((a, b) => positions[a] - positions[b] || a - b);
  const n = order.length;
  let best = Number.POSITIVE_INFINITY;
  for (let mask = 0; mask < 1 << (n - 1); mask++) {
    const cuts = [0];
    for (let k = 1; k < n; k++) if (mask & (1 << (k - 1))) cuts.push(k);
    cuts.push(n);
    let sum = 0;
    let ok = true;
    for (let c = 0; c + 1 < cuts.length && ok; c++) {
      const idx = order.slice(cuts[c], cuts[c + 1]);
      if (idx.length < lo || idx.length > B) ok = false;
      else
        sum += time.batchCost(
          planBatches(
            idx.map((i) => positions[i]),
            B,
            idx.map((i) => layers[i]),
            live,
          )[0],
        );
    }
    if (ok) best = Math.min(best, sum);
  }
  return best;
}

describe('planBatchesByCost', () => {
  it('finds the cheapest cuts (every composition of small rounds), with and without live rows and positions', () => {
    const rand = prng(7);
    for (let trial = 0; trial < 60; trial++) {
      const n = 2 + Math.floor(rand() * 10);
      const positions = Array.from({ length: n }, () => 1 + Math.floor(rand() * 6));
      const layers = Array.from({ length: n }, () => Math.floor(rand() * L));
      const B = 1 + Math.floor(rand() * 5);
      const lo = 1 + Math.floor(rand() * Math.ceil(B / 2));
      const live = { liveRows: trial % 2 === 0, livePositions: trial % 4 < 2 };
      const time = new BatchCostModel(rand() * 30, rand() * 20, 1 + rand(), rand() * 0.2, L);
      const plan = planBatchesByCost(positions, B, layers, live, time, lo);
      const want = cheapest(positions, layers, B, Math.min(lo, n), live, time);
      expect(total(time, plan)).toBeCloseTo(want, 9);
      expect(plan.reduce((s, b) => s + b.rows, 0)).toBe(n);
      for (const b of plan) {
        expect(b.rows).toBeLessThanOrEqual(B);
        expect(b.rows).toBeGreaterThanOrEqual(Math.min(lo, n));
      }
    }
  });

  it('describes each batch as planBatches does: last position + 1, top layer + 1, mean depth', () => {
    const time = new BatchCostModel(0, 0, 1, 0, L); // (no cost per run: ties keep equal positions together)
    // positions 1,1 | 3 | 5,5 (sorted from this order), layers follow their targets
    const plan = planBatchesByCost([5, 1, 3, 1, 5], 4, [0, 2, 1, 3, 2], LIVE_ROWS, time, 1);
    expect(plan).toEqual([
      { rows: 2, positions: 2, depth: 4, meanDepth: 3.5 },
      { rows: 1, positions: 4, depth: 2, meanDepth: 2 },
      { rows: 2, positions: 6, depth: 3, meanDepth: 2 },
    ]);
  });

  it('cuts at every position change when runs cost nothing fixed, and keeps batches full when they cost a lot', () => {
    const { positions, layers } = mixedRound();
    const free = planBatchesByCost(positions, 256, layers, LIVE_ROWS, new BatchCostModel(0, 0, 1, 0.01, 26));
    expect(free.map((b) => b.positions)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const dear = planBatchesByCost(
      positions,
      256,
      layers,
      LIVE_ROWS,
      new BatchCostModel(1e9, 0, 1, 0.01, 26),
    );
    expect(dear.map((b) => b.rows)).toEqual([256, 256, 256, 256]);
    // the B-cuts run positions past their targets' own: more work than cutting at positions
    const work = (plan: PlannedBatch[]) =>
      plan.reduce((s, b) => s + b.rows * (b.meanDepth ?? 0) * b.positions, 0);
    expect(work(free)).toBeLessThan(0.9 * work(planBatches(positions, 256, layers, LIVE_ROWS)));
  });

  it('by gemma-2-2b’s shapes: cuts a round only where its position changes, and one of a single position every B', () => {
    const cost = gemma2CostModel();
    const { positions, layers } = mixedRound();
    const plan = planBatchesByCost(positions, 256, layers, LIVE_ROWS, cost);
    // every cut falls between two positions, and the plan costs less than the B-cuts
    let at = 0;
    for (const b of plan.slice(0, -1)) {
      at += b.rows;
      expect(positions[at]).toBeGreaterThan(positions[at - 1]);
    }
    expect(plan.length).toBeGreaterThan(4);
    expect(total(cost, plan)).toBeLessThan(total(cost, planBatches(positions, 256, layers, LIVE_ROWS)));
    expect(
      planBatchesByCost(new Array(1024).fill(5), 256, layers, LIVE_ROWS, cost).map((b) => b.rows),
    ).toEqual([256, 256, 256, 256]);
    // reading a layer's weights once a run costs as much as ~60 rows' work at one position
    const perRow = cost.cost(26, 26, 1) - cost.cost(26, 0, 1);
    const perRun = cost.cost(26, 0, 1);
    expect(perRun / perRow).toBeGreaterThan(50);
    expect(perRun / perRow).toBeLessThan(80);
  });

  it('with live positions a cut saves only the mixing: no cuts without it, fewer by gemma-2-2b’s shapes', () => {
    const { positions, layers } = mixedRound();
    // the projections cost the same however the round is cut: with a small cost per run, no
    // cut pays (without live positions, the same model cuts at every position change)
    const linear = new BatchCostModel(1, 0, 1, 0, 26);
    expect(planBatchesByCost(positions, 256, layers, LIVE_BOTH, linear).map((b) => b.rows)).toEqual([
      256, 256, 256, 256,
    ]);
    expect(planBatchesByCost(positions, 256, layers, LIVE_ROWS, linear).map((b) => b.positions)).toEqual([
      2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    ]);
    // the mixing alone: a cut at each position change
    const mixing = new BatchCostModel(0, 0, 0, 1, 26);
    expect(planBatchesByCost(positions, 256, layers, LIVE_BOTH, mixing).map((b) => b.positions)).toEqual([
      2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    ]);
    const cost = gemma2CostModel();
    const withPositions = planBatchesByCost(positions, 256, layers, LIVE_BOTH, cost);
    expect(withPositions.length).toBeLessThan(
      planBatchesByCost(positions, 256, layers, LIVE_ROWS, cost).length,
    );
    expect(total(cost, withPositions)).toBeLessThanOrEqual(
      total(cost, planBatches(positions, 256, layers, LIVE_BOTH)),
    );
  });

  it('refuses an unknown CIRCUIT_BATCH_CUTS, naming it', () => {
    vi.stubEnv('CIRCUIT_BATCH_CUTS', 'sometimes');
    expect(() => batchCuts()).toThrow(/CIRCUIT_BATCH_CUTS is cost, timed, fixed or positions/);
    vi.unstubAllEnvs();
    expect(batchCuts()).toBe('fixed');
  });
});

type RunFn = (this: ort.InferenceSession, ...args: unknown[]) => Promise<Record<string, ort.Tensor>>;

describe('a trace cut by cost', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('gives the graph of B-cuts (within 1e-6 of each row’s scale) with the same pruned nodes, in smaller batches', async () => {
    const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
    const IDS = [2, 651, 637, 576, 2029, 1751, 1234, 603, 99];
    const model = openModel(DEMO_DIR);
    const settings = { maxNLogits: 5, desiredLogitProb: 0.95, batchSize: 16, maxFeatureNodes: 120 };
    const sessionProto = (ort.InferenceSession as unknown as { prototype: { run: RunFn } }).prototype;
    const run = sessionProto.run;
    let sizes: number[] = [];
    sessionProto.run = async function (this: ort.InferenceSession, ...args: unknown[]) {
      const feeds = args[0] as Record<string, ort.Tensor>;
      if (feeds.read_slots) sizes.push(feeds.read_slots.dims[0]);
      return run.apply(this, args);
    };
    try {
      for (const kind of ['clt', 'plt']) {
        const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', kind));
        const attributor = await Attributor.create(model, set);
        try {
          vi.stubEnv('CIRCUIT_BATCH_CUTS', 'fixed');
          sizes = [];
          const fixed = await attributor.attribute(IDS, settings);
          const fixedSizes = sizes;
          vi.stubEnv('CIRCUIT_BATCH_CUTS', 'positions');
          sizes = [];
          const cut = await attributor.attribute(IDS, settings);
          expect(worstRowDifference(fixed.graph, cut.graph), kind).toBeLessThan(1e-6);
          expect(prunedNodes(cut.graph), kind).toEqual(prunedNodes(fixed.graph));
          // rounds of 4·16 rows: B-cuts give full batches but for the last; position cuts give more, smaller ones
          expect(fixedSizes.filter((b) => b < 16).length, kind).toBeLessThanOrEqual(2);
          expect(sizes.length, kind).toBeGreaterThan(fixedSizes.length);
          // cuts by shape are the same every time: the same graph, bit for bit
          vi.stubEnv('CIRCUIT_BATCH_CUTS', 'cost');
          const once = await attributor.attribute(IDS, settings);
          const again = await attributor.attribute(IDS, settings);
          expect(
            Buffer.from(again.graph.adjacency.buffer).equals(Buffer.from(once.graph.adjacency.buffer)),
          ).toBe(true);
          expect(worstRowDifference(fixed.graph, once.graph), kind).toBeLessThan(1e-6);
        } finally {
          await attributor.close();
          set.close();
        }
      }
    } finally {
      sessionProto.run = run;
      model.close();
    }
  });
});
