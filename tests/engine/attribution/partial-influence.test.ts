/**
 * Influence estimated from partial rows (attribution.md §4): the one-pass topological
 * estimate equals the iteration v ← v·Â (the series over every walk) to float rounding, on
 * rows with the zero stretches of real attribution rows, and falls back to the iteration when
 * the rows form a cycle.
 */
import { describe, expect, it } from 'vitest';
import {
  PartialInfluence,
  partialInfluence,
} from '../../../electron/engine/attribution/partial-influence.ts';
import { prng } from '../../fixtures/prng.ts';

/**
 * Rows shaped like a trace's: columns [features by (layer, position) | errors | tokens], a
 * feature row reads only lower layers at positions ≤ its own, logit rows read everything.
 */
function traceLikeRows(seed: number, L: number, T: number, perCell: number, nRows: number, nLogits: number) {
  const rand = prng(seed);
  const featLayer: number[] = [];
  const featPos: number[] = [];
  for (let l = 0; l < L; l++)
    for (let p = 1; p < T; p++)
      for (let k = 0; k < perCell; k++) {
        featLayer.push(l);
        featPos.push(p);
      }
  const F = featLayer.length;
  const C = F + L * T + T;
  const rowFor = (layer: number, pos: number) => {
    const row = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      let ok: boolean;
      if (c < F) ok = featLayer[c] < layer && featPos[c] <= pos;
      else if (c < F + L * T) ok = Math.floor((c - F) / T) < layer && (c - F) % T <= pos;
      else ok = c - F - L * T <= pos;
      if (ok && rand() < 0.6) row[c] = (rand() - 0.5) * (rand() < 0.05 ? 50 : 1);
    }
    return row;
  };
  const rows: Float32Array[] = [];
  const column: number[] = [];
  const weight: number[] = [];
  for (let k = 0; k < nLogits; k++) {
    rows.push(rowFor(L, T - 1));
    column.push(-1);
    weight.push(1 / (k + 2));
  }
  const chosen = new Set<number>();
  while (chosen.size < nRows) chosen.add(Math.floor(rand() * F));
  for (const f of chosen) {
    rows.push(rowFor(featLayer[f], featPos[f]));
    column.push(f);
    weight.push(0);
  }
  return { rows, column, weight, C };
}

function relDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return m / scale;
}

describe('partial influence', () => {
  it('one topological pass equals the iteration over every walk', () => {
    for (const seed of [1, 2, 3]) {
      const { rows, column, weight, C } = traceLikeRows(seed, 4, 12, 5, 120, 3);
      const p = new PartialInfluence(C);
      rows.forEach((row, r) => {
        p.add(row, column[r], weight[r]);
      });
      const fast = p.estimate();
      expect(p.lastPass).toBe('ordered'); // a trace's columns are a topological order already
      const slow = p.iterate();
      expect(relDiff(fast, slow)).toBeLessThan(1e-12);
      // influence reaches features through chains of rows (not only the logits' direct reads)
      expect(fast.some((x, c) => x > 0 && rows.slice(0, 3).every((row) => row[c] === 0))).toBe(true);
      expect(relDiff(partialInfluence(rows, column, weight, C), slow)).toBeLessThan(1e-12);
      // added in pieces, as the capped selection does between rounds
      const q = new PartialInfluence(C);
      rows.slice(0, 60).forEach((row, r) => {
        q.add(row, column[r], weight[r]);
      });
      q.estimate();
      rows.slice(60).forEach((row, r) => {
        q.add(row, column[60 + r], weight[60 + r]);
      });
      expect(q.size).toBe(rows.length);
      expect(q.has(column[70])).toBe(true);
      expect(relDiff(q.estimate(), slow)).toBeLessThan(1e-12);
    }
  });

  it('counts readers when the columns are not in layer order, with the same result', () => {
    for (const seed of [4, 5]) {
      const { rows, column, weight, C } = traceLikeRows(seed, 4, 12, 5, 120, 3);
      // Relabel the columns in reverse (rows' entries and their own columns alike): still acyclic,
      // but a feature row now reads node columns above its own.
      const flip = (c: number) => (c < 0 ? c : C - 1 - c);
      const p = new PartialInfluence(C);
      rows.forEach((row, r) => {
        p.add(row.slice().reverse(), flip(column[r]), weight[r]);
      });
      const counted = p.estimate();
      expect(p.lastPass).toBe('counted');
      expect(relDiff(counted, p.iterate())).toBeLessThan(1e-12);
      const q = new PartialInfluence(C);
      rows.forEach((row, r) => {
        q.add(row, column[r], weight[r]);
      });
      const ordered = q.estimate();
      expect(relDiff(Float64Array.from(counted).reverse(), ordered)).toBeLessThan(1e-12);
    }
  });

  it('falls back to the iteration on rows that form a cycle', () => {
    // logit reads node 0 and node 1; node 0 reads node 1 and node 1 reads node 0 (weakly)
    const C = 3;
    const rows = [Float32Array.of(1, 1, 0), Float32Array.of(0, 1, 1), Float32Array.of(1e-3, 0, 1)];
    const p = new PartialInfluence(C);
    p.add(rows[0], -1, 1);
    p.add(rows[1], 0, 0);
    p.add(rows[2], 1, 0);
    const inf = p.estimate();
    expect(p.lastPass).toBe('iterated');
    expect(Array.from(inf)).toEqual(Array.from(p.iterate()));
    expect(inf[2]).toBeGreaterThan(0);
  });
});
