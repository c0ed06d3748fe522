/**
 * The features phase's ETA (eta.ts) as a pure function: batches timed from a known cost
 * model (a fixed part, a part linear and one quadratic in the batch's position count, ±10 %
 * noise), influence estimates growing with the rows; the ETA after each batch is compared
 * with the true remaining time. The equal-cost-per-batch ETA it replaces is far off on the
 * same runs.
 */
import { describe, expect, it } from 'vitest';
import {
  attentionHalfPoint,
  BatchCostModel,
  batchWork,
  FeaturesEta,
  fitNonNegative,
  type PlannedBatch,
  planBatches,
} from '../../../electron/engine/attribution/eta.ts';
import { prng } from '../../fixtures/prng.ts';

const batchMs = (b: PlannedBatch) => 40 + 0.003 * b.rows * b.positions + 0.00004 * b.rows * b.positions ** 2;
const estimateMs = (rows: number) => 200 + 0.08 * rows;

/** Positions of F features spread over a T-token prompt (position 0 has none). */
function featurePositions(seed: number, F: number, T: number): number[] {
  const rand = prng(seed);
  return Array.from({ length: F }, () => 1 + Math.floor(rand() * (T - 1)));
}

interface Run {
  /** ETA after each batch, and the true remaining time then (seconds). */
  eta: number[];
  truth: number[];
  /** The old estimate: mean time per batch so far × batches left. */
  naive: number[];
}

/** Every feature gets a row: one plan, batches sorted by position. */
function allFeaturesRun(seed: number): Run {
  const rand = prng(seed + 100);
  const plan = planBatches(featurePositions(seed, 12_000, 400), 256);
  const actual = plan.map((b) => batchMs(b) * (0.9 + 0.2 * rand()));
  const eta = new FeaturesEta(attentionHalfPoint(128, 4, 32, 40));
  const out: Run = { eta: [], truth: [], naive: [] };
  let elapsed = 0;
  for (let i = 0; i < plan.length; i++) {
    eta.recordBatch(plan[i], actual[i]);
    elapsed += actual[i];
    out.eta.push(eta.remainingSeconds(plan.slice(i + 1))!);
    out.truth.push(actual.slice(i + 1).reduce((s, x) => s + x, 0) / 1000);
    out.naive.push(((elapsed / (i + 1)) * (plan.length - i - 1)) / 1000);
  }
  return out;
}

/**
 * Capped selection: rounds of 4 batches between influence estimates, each round's features
 * drawn from the whole prompt; the plan for later rounds is predicted from other draws (as
 * the ranking predicts them in attribute.ts).
 */
function cappedRun(seed: number): Run {
  const rand = prng(seed + 200);
  const B = 256;
  const perRound = 4 * B;
  const cap = 7500;
  const nLogits = 10;
  const rounds: PlannedBatch[][] = [];
  for (let done = 0; done < cap; done += perRound)
    rounds.push(planBatches(featurePositions(seed + done, Math.min(perRound, cap - done), 400), B));
  const predicted = rounds.map((_, r) =>
    planBatches(featurePositions(seed + 7 * r + 1, Math.min(perRound, cap - r * perRound), 400), B),
  );
  // the timeline: estimate, its round's batches, estimate, …
  const events: { ms: number; batch?: PlannedBatch; estimateRows?: number; round: number; k: number }[] = [];
  rounds.forEach((batches, r) => {
    const rows = nLogits + r * perRound;
    events.push({ ms: estimateMs(rows) * (0.9 + 0.2 * rand()), estimateRows: rows, round: r, k: -1 });
    batches.forEach((b, k) => {
      events.push({ ms: batchMs(b) * (0.9 + 0.2 * rand()), batch: b, round: r, k });
    });
  });
  const eta = new FeaturesEta(attentionHalfPoint(128, 4, 32, 40));
  const out: Run = { eta: [], truth: [], naive: [] };
  const nBatches = rounds.reduce((s, r) => s + r.length, 0);
  let elapsed = 0;
  let done = 0;
  events.forEach((e, i) => {
    elapsed += e.ms;
    if (e.estimateRows !== undefined) {
      eta.recordEstimate(e.estimateRows, e.ms);
      return;
    }
    eta.recordBatch(e.batch!, e.ms);
    done++;
    const plan = [...rounds[e.round].slice(e.k + 1), ...predicted.slice(e.round + 1).flat()];
    const estimatesLeft = rounds.slice(e.round + 1).map((_, j) => nLogits + (e.round + 1 + j) * perRound);
    out.eta.push(eta.remainingSeconds(plan, estimatesLeft)!);
    out.truth.push(events.slice(i + 1).reduce((s, x) => s + x.ms, 0) / 1000);
    out.naive.push(((elapsed / done) * (nBatches - done)) / 1000);
  });
  return out;
}

/** Largest |eta/truth − 1| from `from` (fraction of the run) on, while > 1 s is left. */
function worstError(run: Run, key: 'eta' | 'naive', from: number): number {
  let worst = 0;
  for (let i = Math.floor(from * run.eta.length); i < run.eta.length; i++) {
    if (run.truth[i] < 1) continue;
    worst = Math.max(worst, Math.abs(run[key][i] / run.truth[i] - 1));
  }
  return worst;
}

describe('features phase ETA', () => {
  it('fits non-negative least squares exactly on exact data and clamps what would go negative', () => {
    const xs = [1, 2, 3, 5, 8].map((t) => [1, t, t * t]);
    const ys = xs.map(([, t, t2]) => 3 + 0.5 * t + 0.25 * t2);
    const coef = fitNonNegative(xs, ys, [1, 1, 1, 1, 1])!;
    coef.forEach((c, j) => {
      expect(c).toBeCloseTo([3, 0.5, 0.25][j], 9);
    });
    // y falls with x: a negative slope is not a cost, so the fit is the constant
    const flat = fitNonNegative(
      [
        [1, 1],
        [1, 2],
        [1, 3],
      ],
      [3, 2, 1],
      [1, 1, 1],
    )!;
    expect(flat[1]).toBe(0);
    expect(flat[0]).toBeCloseTo(2, 12);
    expect(fitNonNegative([], [], [])).toBeUndefined();
  });

  it('plans batches as attribute.ts runs them: sorted by position, each up to its last position', () => {
    expect(planBatches([5, 1, 9, 3, 7], 2)).toEqual([
      { rows: 2, positions: 4 },
      { rows: 2, positions: 8 },
      { rows: 1, positions: 10 },
    ]);
    // with layers: each batch's backward runs up to its top target layer
    expect(planBatches([5, 1, 9, 3, 7], 2, [0, 2, 1, 0, 3])).toEqual([
      { rows: 2, positions: 4, depth: 3 },
      { rows: 2, positions: 8, depth: 4 },
      { rows: 1, positions: 10, depth: 2 },
    ]);
    // with live rows: also the mean of the rows' depths (each row runs only through its own layers)
    const liveRows = { liveRows: true, livePositions: false };
    expect(planBatches([5, 1, 9, 3, 7], 2, [0, 2, 1, 0, 3], liveRows)).toEqual([
      { rows: 2, positions: 4, depth: 3, meanDepth: 2 },
      { rows: 2, positions: 8, depth: 4, meanDepth: 2.5 },
      { rows: 1, positions: 10, depth: 2, meanDepth: 2 },
    ]);
    // with live positions: Σ depth × (position + 1) over the rows, the projections' work
    // (sorted: positions 1, 3 | 5, 7 | 9 with layers 2, 0 | 0, 3 | 1)
    expect(planBatches([5, 1, 9, 3, 7], 2, [0, 2, 1, 0, 3], { liveRows: true, livePositions: true })).toEqual(
      [
        { rows: 2, positions: 4, depth: 3, meanDepth: 2, pairLayers: 3 * 2 + 1 * 4 },
        { rows: 2, positions: 8, depth: 4, meanDepth: 2.5, pairLayers: 1 * 6 + 4 * 8 },
        { rows: 1, positions: 10, depth: 2, meanDepth: 2, pairLayers: 2 * 10 },
      ],
    );
    // without live rows each row runs through the batch's top layer
    expect(
      planBatches([5, 1, 9, 3, 7], 2, [0, 2, 1, 0, 3], { liveRows: false, livePositions: true }),
    ).toEqual([
      { rows: 2, positions: 4, depth: 3, pairLayers: 3 * (2 + 4) },
      { rows: 2, positions: 8, depth: 4, pairLayers: 4 * (6 + 8) },
      { rows: 1, positions: 10, depth: 2, pairLayers: 2 * 10 },
    ]);
    // a shallow batch is predicted cheaper than a deep one at the same positions
    const eta = new FeaturesEta(100, 4);
    for (const [t, depth] of [
      [50, 4],
      [100, 2],
      [200, 4],
      [300, 1],
    ])
      eta.recordBatch({ rows: 256, positions: t, depth }, batchMs({ rows: 256, positions: t }) * (depth / 4));
    expect(eta.batchMs({ rows: 256, positions: 300, depth: 1 })!).toBeLessThan(
      0.5 * eta.batchMs({ rows: 256, positions: 300, depth: 4 })!,
    );
    // and a batch whose rows mostly stop low, under live rows, cheaper than its top says
    expect(eta.batchMs({ rows: 256, positions: 300, depth: 4, meanDepth: 1.5 })!).toBeLessThan(
      0.5 * eta.batchMs({ rows: 256, positions: 300, depth: 4 })!,
    );
    expect(new FeaturesEta(100).remainingSeconds([{ rows: 1, positions: 1 }])).toBeUndefined();
  });

  it('charges the projections by live pairs where a batch has them, the mixing by rows × t²', () => {
    const cost = new BatchCostModel(5, 0, 2, 0.5, 4);
    const dense = { rows: 3, positions: 4, depth: 4, meanDepth: 2 };
    // (linear·rowLayers·t + quadratic·rowLayers·t²)/L with rowLayers = 6
    expect(cost.batchCost(dense)).toBeCloseTo(5 + (2 * 6 * 4 + 0.5 * 6 * 16) / 4, 12);
    expect(cost.batchCost({ ...dense, pairLayers: 10 })).toBeCloseTo(5 + (2 * 10 + 0.5 * 6 * 16) / 4, 12);
    // the prior too: fewer live pairs, less work
    expect(batchWork({ ...dense, pairLayers: 10 }, 50, 4)).toBeLessThan(batchWork(dense, 50, 4));
    expect(batchWork({ ...dense, pairLayers: 6 * 4 }, 50, 4)).toBeCloseTo(batchWork(dense, 50, 4), 12);
  });

  it('is right on long runs where every feature gets a row (batches grow with their position)', () => {
    for (const seed of [1, 2]) {
      const run = allFeaturesRun(seed);
      expect(run.eta.length).toBe(47);
      // early on the curve in the position count is extrapolated from the first positions
      expect(worstError(run, 'eta', 0.25)).toBeLessThan(0.3);
      expect(worstError(run, 'eta', 0.5)).toBeLessThan(0.15);
      // the equal-cost ETA it replaces: the later batches cost several times the early ones
      expect(worstError(run, 'naive', 0.25)).toBeGreaterThan(0.6);
      expect(worstError(run, 'naive', 0.5)).toBeGreaterThan(0.3);
    }
  });

  it('is right under a cap, with influence re-estimates between rounds', () => {
    for (const seed of [3, 4]) {
      const run = cappedRun(seed);
      expect(run.eta.length).toBe(30);
      expect(worstError(run, 'eta', 0.15)).toBeLessThan(0.15);
      // the naive ETA leaves the re-estimates out
      expect(worstError(run, 'naive', 0.15)).toBeGreaterThan(0.2);
    }
  });
});
