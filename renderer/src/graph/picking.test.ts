/** CPU picking, label placement and the edge budget of big graphs. */
import { describe, expect, it } from 'vitest';
import { strongestEdges } from './budget.ts';
import { type LabelCandidate, labelBox, overlaps, placeLabels } from './labels.ts';
import { GridIndex, segmentDistance } from './spatial.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('GridIndex', () => {
  it('finds the same nearest point as a linear scan, within each point radius', () => {
    const r = rng(3);
    const n = 5000;
    const xs = Float64Array.from({ length: n }, () => r() * 1000);
    const ys = Float64Array.from({ length: n }, () => r() * 400 - 200);
    const radius = Float64Array.from({ length: n }, () => 1 + r() * 6);
    const grid = new GridIndex(xs, ys, 8);
    for (let q = 0; q < 500; q++) {
      const x = r() * 1000;
      const y = r() * 400 - 200;
      let best = -1;
      let bestD = Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const d = Math.hypot(xs[i] - x, ys[i] - y);
        if (d <= radius[i] && d < bestD) {
          best = i;
          bestD = d;
        }
      }
      expect(grid.nearest(x, y, 7, (i, d) => d <= radius[i])).toBe(best);
    }
    expect(new GridIndex([], [], 1).nearest(0, 0, 5, () => true)).toBe(-1);
    expect(() => new GridIndex([0], [0], 0)).toThrow(/cell size/);
  });

  it('measures the distance to a segment', () => {
    expect(segmentDistance(5, 3, 0, 0, 10, 0)).toBe(3);
    expect(segmentDistance(-4, 3, 0, 0, 10, 0)).toBe(5);
    expect(segmentDistance(1, 1, 2, 2, 2, 2)).toBeCloseTo(Math.SQRT2, 12);
  });
});

describe('placeLabels', () => {
  const cands = (spread: number): LabelCandidate[] => {
    const r = rng(7);
    return Array.from({ length: 600 }, (_, i) => ({
      id: `n${i}`,
      x: 800 + (r() - 0.5) * spread,
      y: 450 + (r() - 0.5) * spread * 0.5,
      radius: 4,
      text: `L${i % 26}/${i * 37} feature`,
      position: 'right' as const,
      priority: r(),
      forced: i < 3,
    }));
  };

  it('never overlaps two placed labels, places forced ones, and respects priority', () => {
    const c = cands(800);
    const placed = placeLabels(c, { width: 1600, height: 900 });
    for (let i = 0; i < placed.length; i++)
      for (let j = i + 1; j < placed.length; j++)
        if (!(i < 3 && j < 3))
          expect(overlaps(placed[i], placed[j]), `${placed[i].id} × ${placed[j].id}`).toBe(false);
    // no free label covers another node's glyph
    for (const b of placed.filter((p) => !p.forced))
      for (const n of c)
        if (n.id !== b.id) {
          const g = {
            id: n.id,
            x0: n.x - n.radius,
            x1: n.x + n.radius,
            y0: n.y - n.radius,
            y1: n.y + n.radius,
          };
          expect(overlaps(b, g), `${b.id} covers ${n.id}`).toBe(false);
        }
    const ids = new Set(placed.map((b) => b.id));
    for (const f of ['n0', 'n1', 'n2']) expect(ids.has(f)).toBe(true);
    // the best free candidate gets its label unless something already blocks every side
    const best = c.filter((x) => !x.forced).sort((a, b) => b.priority - a.priority)[0];
    const sides = (['right', 'left', 'above', 'below'] as const).map((side) => labelBox(best, 11, 2, side));
    const free = sides.some(
      (box) =>
        !placed.slice(0, 3).some((p) => overlaps(p, box)) &&
        !c.some(
          (n) =>
            n.id !== best.id &&
            overlaps(box, { id: n.id, x0: n.x - 5, x1: n.x + 5, y0: n.y - 5, y1: n.y + 5 }),
        ),
    );
    if (free) expect(ids.has(best.id)).toBe(true);
  });

  it('keeps labels off other nodes, trying the other sides of its node', () => {
    const c: LabelCandidate[] = [
      { id: 'a', x: 100, y: 100, radius: 4, text: 'abcdefgh', position: 'right', priority: 2 },
      { id: 'b', x: 130, y: 100, radius: 4, text: '', position: 'right', priority: 0 },
    ];
    const placed = placeLabels(c, { width: 400, height: 400 });
    expect(placed.map((p) => [p.id, p.position])).toEqual([['a', 'left']]);
    // boxed in on every side: no label at all
    const boxed = [
      ...c,
      { id: 'c', x: 75, y: 100, radius: 4, text: '', position: 'right' as const, priority: 0 },
      { id: 'd', x: 100, y: 88, radius: 4, text: '', position: 'right' as const, priority: 0 },
      { id: 'e', x: 100, y: 112, radius: 4, text: '', position: 'right' as const, priority: 0 },
    ];
    expect(placeLabels(boxed, { width: 400, height: 400 })).toEqual([]);
  });

  it('shows more labels when zoomed in (nodes further apart on screen)', () => {
    const far = placeLabels(cands(400), { width: 1600, height: 900 }).length;
    const near = placeLabels(cands(1500), { width: 1600, height: 900 }).length;
    expect(near).toBeGreaterThan(far * 1.5);
    expect(placeLabels(cands(1500), { width: 1600, height: 900, max: 10 }).length).toBe(13);
  });
});

describe('strongestEdges', () => {
  it('keeps the budget of edges with the largest |weight|', () => {
    const w = [0.1, -5, 2, -2, 0.3, 4, 2];
    const k = strongestEdges(w, 4);
    expect([...k]).toEqual([0, 1, 1, 1, 0, 1, 0]);
    expect(strongestEdges(w, 10).every((x) => x === 1)).toBe(true);
    expect(strongestEdges(w, 0).some((x) => x === 1)).toBe(false);
    const r = rng(1);
    const big = Float32Array.from({ length: 100_000 }, () => r() - 0.5);
    const keep = strongestEdges(big, 5000);
    let n = 0;
    let minKept = Number.POSITIVE_INFINITY;
    let maxDropped = 0;
    for (let e = 0; e < big.length; e++) {
      if (keep[e]) {
        n++;
        minKept = Math.min(minKept, Math.abs(big[e]));
      } else maxDropped = Math.max(maxDropped, Math.abs(big[e]));
    }
    expect(n).toBe(5000);
    expect(minKept).toBeGreaterThanOrEqual(maxDropped);
  });
});
