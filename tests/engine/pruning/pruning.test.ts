import { describe, expect, it } from 'vitest';
import type { RawAttributionGraph } from '../../../electron/engine/attribution/graph-types.ts';
import { nodeLayout } from '../../../electron/engine/attribution/graph-types.ts';
import { EngineError } from '../../../electron/engine/errors.ts';
import {
  absRowSums,
  analyzeGraph,
  computeGraphScores,
  computeInfluence,
  cutForShare,
  cutForShareStream,
  influenceByTopologicalPass,
  influenceFromScaledRows,
  inverseRowScale,
  logitWeights,
  normalizeAdjacency,
  type PrunedGraph,
  pruneGraph,
  rankWithShares,
  selectNodes,
} from '../../../electron/engine/pruning/index.ts';
import { emptyGraph, handGraph, naiveInfluence, prng, randomGraph, refPrefix, refPrune } from './helpers.ts';

function edgeList(p: PrunedGraph): Array<[number, number, number]> {
  return Array.from(p.edges.target, (t, q) => [t, p.edges.source[q], p.edges.weight[q]]);
}

function expectEngineError(f: () => unknown, code?: string): EngineError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    if (code) expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error('expected an EngineError');
}

describe('hand-made graph', () => {
  const g = handGraph();
  const N = 8;

  it('normalizes rows of |A| (zero rows stay zero)', () => {
    const Ah = normalizeAdjacency(g.adjacency, N);
    expect(Array.from(Ah.subarray(0, 8))).toEqual([0, 0, 0, 0, 0.25, 0.75, 0, 0]);
    expect(Array.from(Ah.subarray(8, 16))).toEqual([0, 0, 0, 0, 0, 1, 0, 0]);
    expect(Array.from(Ah.subarray(48, 56))).toEqual([0.5, 0.25, 0, 0.25, 0, 0, 0, 0]);
    expect(Array.from(Ah.subarray(56, 64))).toEqual([0, 0.75, 0, 0, 0, 0.25, 0, 0]);
    for (let i = 2; i < 6; i++) expect(Ah.subarray(i * 8, i * 8 + 8).every((x) => x === 0)).toBe(true);
  });

  it('computes influence by hand', () => {
    const w = logitWeights(g);
    expect(Array.from(w)).toEqual([0, 0, 0, 0, 0, 0, 0.75, 0.25]);
    const inf = computeInfluence(normalizeAdjacency(g.adjacency, N), N, w);
    // v1 = wÂ: f0 .375, f1 .375, e1 .1875, t1 .0625; v2: t0 .09375, t1 .65625; v3 = 0
    expect(Array.from(inf)).toEqual([0.375, 0.375, 0, 0.1875, 0.09375, 0.71875, 0, 0]);
    const sc = inverseRowScale(absRowSums(g.adjacency, N));
    expect(Array.from(influenceByTopologicalPass(g.adjacency, N, sc, w))).toEqual(Array.from(inf));
  });

  it('ranks with stable ties and cumulative shares', () => {
    const { ranking } = analyzeGraph(g);
    // t1 .71875, f0 .375, f1 .375 (tie: index order), e1 .1875, t0 .09375, then zeros by index
    expect(Array.from(ranking.order)).toEqual([5, 0, 1, 3, 4, 2, 6, 7]);
    expect(ranking.total).toBe(1.75);
    expect(ranking.share[5]).toBeCloseTo(0.71875 / 1.75, 15);
    expect(ranking.share[0]).toBe(0.625);
    expect(ranking.share[1]).toBeCloseTo(1.46875 / 1.75, 15);
    expect(ranking.share[3]).toBeCloseTo(1.65625 / 1.75, 15);
    for (const i of [4, 2, 6, 7]) expect(ranking.share[i]).toBe(1);
  });

  it('computes the scores by hand', () => {
    const s = computeGraphScores(g);
    // tokens .8125, errors .1875
    expect(s.replacementScore).toBe(0.8125);
    // Σ(inf + w) = 2.75; only y0 has error input (1/4), weighted by .75
    expect(s.completenessScore).toBeCloseTo(2.5625 / 2.75, 15);
  });

  it('prunes at the defaults', () => {
    const p = pruneGraph(g);
    expect(Array.from(p.keptNodes)).toEqual([0, 1, 4, 5, 6, 7]);
    const sh = analyzeGraph(g).ranking.share;
    expect(Array.from(p.nodeInfluence)).toEqual([0, 1, 4, 5, 6, 7].map((i) => Math.fround(sh[i])));
    // e1 dropped; 7 edges on P all needed for 0.98 (the last one reaches exactly 1)
    expect(edgeList(p)).toEqual([
      [0, 4, 1],
      [0, 5, 3],
      [1, 5, -2],
      [6, 0, 2],
      [6, 1, 1],
      [7, 1, 3],
      [7, 5, 1],
    ]);
    expect(p.replacementScore).toBe(0.8125);
    expect(p.nodeThreshold).toBe(0.8);
    expect(p.edgeThreshold).toBe(0.98);
  });

  it('edge threshold and clean-up by hand', () => {
    // edge scores on P: y0←f0 .5, f1←t1 .4375, f0←t1 .375, y0←f1 .25, y1←f1 .1875, f0←t0 .125, y1←t1 .0625
    const at = (e: number) => pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: e });
    expect(edgeList(at(0.9)).map((x) => [x[0], x[1]])).toEqual([
      [0, 5],
      [1, 5],
      [6, 0],
      [6, 1],
      [7, 1],
    ]);
    // 0.5: keeps y0←f0, f1←t1, f0←t1; f1 has no outgoing edge left → removed with f1←t1
    const p5 = at(0.5);
    expect(Array.from(p5.keptNodes)).toEqual([0, 4, 5, 6, 7]);
    expect(edgeList(p5)).toEqual([
      [0, 5, 3],
      [6, 0, 2],
    ]);
    // 0.3: keeps y0←f0, f1←t1: f0 lacks an incoming edge, f1 an outgoing one
    const p3 = at(0.3);
    expect(Array.from(p3.keptNodes)).toEqual([4, 5, 6, 7]);
    expect(p3.edges.target.length).toBe(0);
  });

  it('breaks influence ties by index and re-normalizes on P', () => {
    // node threshold .6: the prefix [t1, f0] reaches .625; f1 (same influence as f0) is out
    const p = pruneGraph(g, { nodeThreshold: 0.6 });
    expect(Array.from(p.keptNodes)).toEqual([0, 4, 5, 6, 7]);
    expect(edgeList(p)).toEqual([
      [0, 4, 1],
      [0, 5, 3],
      [6, 0, 2],
      [7, 5, 1],
    ]);
    // node threshold 0: no feature/error candidate; only y1 ← t1 remains
    const p0 = pruneGraph(g, { nodeThreshold: 0 });
    expect(Array.from(p0.keptNodes)).toEqual([4, 5, 6, 7]);
    expect(edgeList(p0)).toEqual([[7, 5, 1]]);
  });

  it('keeps pinned nodes', () => {
    const p = pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.3, pinned: [3, 1] });
    // f1 pinned: kept with its in-edge f1←t1; e1 pinned without any edge
    expect(Array.from(p.keptNodes)).toEqual([1, 3, 4, 5, 6, 7]);
    expect(edgeList(p).map((x) => [x[0], x[1]])).toEqual([[1, 5]]);
  });
});

describe('node-threshold monotonicity is not guaranteed (inherent)', () => {
  // f=0 (l0,p1) | e0=1, e1=2 | t0=3, t1=4 | y=5 (p=1);  y ← f: 3, e1: 2;  f ← t0: 1, t1: 1
  // influence: f .6, e1 .4, t0 .3, t1 .3 (total 1.6): shares f .375, e1 .625.
  function graph() {
    const g = emptyGraph({
      nLayers: 1,
      nPositions: 2,
      features: [[0, 1, 7]],
      logits: [{ tokenId: 9, p: 1, token: ' x' }],
    });
    const N = 6;
    g.adjacency[5 * N + 0] = 3;
    g.adjacency[5 * N + 2] = 2;
    g.adjacency[0 * N + 3] = 1;
    g.adjacency[0 * N + 4] = 1;
    return g;
  }

  it('a node kept at a lower node threshold can be dropped at a higher one', () => {
    const g = graph();
    // node .3: P = {f}; edge scores y←f 1, f←t0 .5, f←t1 .5 → at .6 keep y←f, f←t0: f survives
    const lo = pruneGraph(g, { nodeThreshold: 0.3, edgeThreshold: 0.6 });
    expect(Array.from(lo.keptNodes)).toEqual([0, 3, 4, 5]);
    expect(edgeList(lo).map((x) => [x[0], x[1]])).toEqual([
      [0, 3],
      [5, 0],
    ]);
    // node .5: P = {f, e1}; y's row is re-normalized: y←f .6, y←e1 .4, f←t0 .3, f←t1 .3 →
    // at .6 only y←f, y←e1 are kept, f loses its incoming edges and the clean-up removes it.
    const hi = pruneGraph(g, { nodeThreshold: 0.5, edgeThreshold: 0.6 });
    expect(Array.from(hi.keptNodes)).toEqual([2, 3, 4, 5]);
    expect(edgeList(hi).map((x) => [x[0], x[1]])).toEqual([[5, 2]]);
    // The node stage alone is monotone: P grows from {f} to {f, e1}.
    const { ranking, layout } = analyzeGraph(g);
    expect(Array.from(selectNodes(ranking, layout, 0.3))).toEqual([1, 0, 0, 0, 0, 0]);
    expect(Array.from(selectNodes(ranking, layout, 0.5))).toEqual([1, 0, 1, 0, 0, 0]);
  });
});

function checkInvariants(g: RawAttributionGraph, p: PrunedGraph, pinned: number[] = []) {
  const lay = nodeLayout(g.nodes);
  const N = lay.total;
  const kept = new Set(p.keptNodes);
  for (let q = 1; q < p.keptNodes.length; q++) expect(p.keptNodes[q]).toBeGreaterThan(p.keptNodes[q - 1]);
  for (let i = lay.tokenOffset; i < N; i++) expect(kept.has(i)).toBe(true);
  for (const i of pinned) expect(kept.has(i)).toBe(true);
  const out = new Int32Array(N);
  const inn = new Int32Array(N);
  let prev = -1;
  for (let q = 0; q < p.edges.target.length; q++) {
    const t = p.edges.target[q];
    const s = p.edges.source[q];
    expect(kept.has(t) && kept.has(s)).toBe(true);
    expect(p.edges.weight[q]).toBe(g.adjacency[t * N + s]);
    expect(p.edges.weight[q]).not.toBe(0);
    expect(t * N + s).toBeGreaterThan(prev);
    prev = t * N + s;
    out[s]++;
    inn[t]++;
  }
  // fixed point of the clean-up
  for (const i of p.keptNodes) {
    if (i >= lay.tokenOffset || pinned.includes(i)) continue;
    expect(out[i]).toBeGreaterThan(0);
    if (i < lay.errorOffset) expect(inn[i]).toBeGreaterThan(0);
  }
  const share = analyzeGraph(g).ranking.share;
  p.keptNodes.forEach((i, q) => {
    expect(p.nodeInfluence[q]).toBe(Math.fround(share[i]));
  });
}

describe('random DAGs (N = 200)', () => {
  const seeds = [11, 12, 13];
  const graphs = seeds.map((s) => randomGraph(s));

  it('influence equals the explicit power series', () => {
    for (const g of graphs) {
      const N = nodeLayout(g.nodes).total;
      expect(N).toBe(200);
      const ref = naiveInfluence(g);
      const w = logitWeights(g);
      const iter = computeInfluence(normalizeAdjacency(g.adjacency, N), N, w);
      const sc = inverseRowScale(absRowSums(g.adjacency, N));
      const scaled = influenceFromScaledRows(g.adjacency, N, sc, w);
      const topo = influenceByTopologicalPass(g.adjacency, N, sc, w);
      let nz = 0;
      for (let i = 0; i < N; i++) {
        if (ref[i] > 0) nz++;
        // Â is float32 in computeInfluence: relative error ~1e-7 per entry
        expect(Math.abs(iter[i] - ref[i])).toBeLessThanOrEqual(1e-6 * ref[i] + 1e-300);
        expect(Math.abs(scaled[i] - ref[i])).toBeLessThanOrEqual(1e-13 * ref[i] + 1e-300);
        expect(Math.abs(topo[i] - ref[i])).toBeLessThanOrEqual(1e-13 * ref[i] + 1e-300);
      }
      expect(nz).toBeGreaterThan(100);
    }
  });

  it('matches a dense reference implementation of §5', () => {
    for (const g of graphs) {
      for (const [nt, et] of [
        [0.8, 0.98],
        [0.5, 0.9],
        [0.95, 0.7],
        [1, 1],
      ]) {
        const p = pruneGraph(g, { nodeThreshold: nt, edgeThreshold: et });
        const r = refPrune(g, nt, et);
        const keptRef = r.nodes.flatMap((k, i) => (k ? [i] : []));
        expect(Array.from(p.keptNodes)).toEqual(keptRef);
        const edges = new Set(Array.from(p.edges.target, (t, q) => `${t},${p.edges.source[q]}`));
        expect(edges).toEqual(r.edges);
        checkInvariants(g, p);
      }
    }
  });

  it('scores match the circuit-tracer formulas on the unpruned graph', () => {
    for (const g of graphs) {
      const lay = nodeLayout(g.nodes);
      const N = lay.total;
      const inf = naiveInfluence(g);
      const w = logitWeights(g);
      let tok = 0;
      let err = 0;
      for (let i = lay.tokenOffset; i < lay.logitOffset; i++) tok += inf[i];
      for (let i = lay.errorOffset; i < lay.tokenOffset; i++) err += inf[i];
      let num = 0;
      let den = 0;
      for (let i = 0; i < N; i++) {
        let rs = 0;
        let es = 0;
        for (let j = 0; j < N; j++) {
          const a = Math.abs(g.adjacency[i * N + j]);
          rs += a;
          if (j >= lay.errorOffset && j < lay.tokenOffset) es += a;
        }
        const frac = rs > 0 ? es / rs : 0;
        num += (1 - frac) * (inf[i] + w[i]);
        den += inf[i] + w[i];
      }
      const s = computeGraphScores(g);
      expect(s.replacementScore).toBeCloseTo(tok / (tok + err), 12);
      expect(s.completenessScore).toBeCloseTo(num / den, 12);
      const p = pruneGraph(g);
      expect(p.replacementScore).toBe(s.replacementScore);
      expect(p.completenessScore).toBe(s.completenessScore);
    }
  });

  const grid = [0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1];

  it('is monotone in the edge threshold at a fixed node threshold', () => {
    for (const g of graphs) {
      const an = analyzeGraph(g);
      for (const nt of [0.5, 0.8, 1]) {
        let prevNodes = new Set<number>();
        let prevEdges = new Set<string>();
        for (const et of grid) {
          const p = pruneGraph(g, { nodeThreshold: nt, edgeThreshold: et }, an);
          const nodes = new Set(p.keptNodes);
          const edges = new Set(Array.from(p.edges.target, (t, q) => `${t},${p.edges.source[q]}`));
          for (const i of prevNodes) expect(nodes.has(i)).toBe(true);
          for (const e of prevEdges) expect(edges.has(e)).toBe(true);
          prevNodes = nodes;
          prevEdges = edges;
        }
      }
    }
  });

  it('node selection (before edge pruning) is monotone in the node threshold', () => {
    for (const g of graphs) {
      const { ranking, layout } = analyzeGraph(g);
      let prev: Uint8Array = new Uint8Array(layout.total);
      for (const nt of grid) {
        const cur = selectNodes(ranking, layout, nt);
        for (let i = 0; i < layout.total; i++) if (prev[i]) expect(cur[i]).toBe(1);
        prev = cur;
      }
      // threshold 1 keeps exactly the candidates with positive influence
      const all = selectNodes(ranking, layout, 1);
      const inf = analyzeGraph(g).influence;
      for (let i = 0; i < layout.tokenOffset; i++) expect(all[i]).toBe(inf[i] > 0 ? 1 : 0);
    }
  });

  it('keeps pinned nodes and still reaches the clean-up fixed point for the others', () => {
    for (const g of graphs) {
      const an = analyzeGraph(g);
      const lay = an.layout;
      // the three least influential features and one error node
      const feats = Array.from(an.ranking.order).filter((i) => i < lay.errorOffset);
      const pinned = [...feats.slice(-3), lay.errorOffset + 7];
      const p = pruneGraph(g, { pinned }, an);
      checkInvariants(g, p, pinned);
      const r = refPrune(g, 0.8, 0.98, pinned);
      expect(Array.from(p.keptNodes)).toEqual(r.nodes.flatMap((k, i) => (k ? [i] : [])));
    }
  });
});

describe('cutForShare', () => {
  it('equals the stable smallest prefix, ties included', () => {
    const rand = prng(5);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(rand() * 300);
      // few distinct dyadic values: many exact ties, exact sums
      const scores = Float64Array.from({ length: n }, () => (1 + Math.floor(rand() * 6)) / 8);
      for (const t of [0, 0.2, 0.5, 0.8, 0.98, 1]) {
        const ref = refPrefix(Array.from(scores), t);
        const cut = cutForShare(scores, t);
        let ties = cut.tiesKept;
        const got = Array.from(
          scores,
          (s) => !cut.keepNone && (s > cut.tau || (s === cut.tau && ties-- > 0)),
        );
        expect(got).toEqual(ref);
        expect(cut.kept).toBe(ref.filter(Boolean).length);
      }
    }
  });

  it('handles spread-out magnitudes', () => {
    const rand = prng(6);
    const scores = Float64Array.from({ length: 5000 }, () => Math.exp(40 * (rand() - 0.5)));
    for (const t of [0.1, 0.5, 0.9, 0.999]) {
      const ref = refPrefix(Array.from(scores), t);
      const cut = cutForShare(scores, t);
      let ties = cut.tiesKept;
      const got = Array.from(scores, (s) => s > cut.tau || (s === cut.tau && ties-- > 0));
      expect(got).toEqual(ref);
    }
  });

  it('runs over a stream of scores in a few passes, even through a long tail of tiny ones', () => {
    // edges are scored on the fly, not stored: the cut reads the stream again per pass
    const rand = prng(7);
    const scores = Float64Array.from({ length: 20_000 }, () => Math.exp(-60 * rand()) * rand() + 1e-300);
    for (const t of [0.5, 0.98, 0.999999, 1]) {
      let passes = 0;
      const cut = cutForShareStream((visit) => {
        passes++;
        for (const x of scores) visit(x);
      }, t);
      expect(cut).toEqual(cutForShare(scores, t));
      if (t < 0.99) {
        // (near 1 the bucketed sums may differ from the rank-ordered ones in the last bit)
        let ties = cut.tiesKept;
        const got = Array.from(scores, (x) => x > cut.tau || (x === cut.tau && ties-- > 0));
        expect(got).toEqual(refPrefix(Array.from(scores), t));
      }
      expect(passes).toBeLessThanOrEqual(3);
    }
  });

  it('rank shares are 1 when nothing has influence', () => {
    const r = rankWithShares([0, 0, 0]);
    expect(Array.from(r.share)).toEqual([1, 1, 1]);
    expect(Array.from(r.order)).toEqual([0, 1, 2]);
  });
});

describe('memory', () => {
  it('refuses to keep more edges than the memory available holds, before allocating them', () => {
    const g = randomGraph(11, { nFeatures: 30 });
    const before = process.env.CIRCUIT_MEMORY_LIMIT_BYTES;
    process.env.CIRCUIT_MEMORY_LIMIT_BYTES = '100';
    try {
      const e = expectEngineError(() => pruneGraph(g, { nodeThreshold: 1, edgeThreshold: 1 }), 'resources');
      expect(e.message).toMatch(/pruning keeps \d+ edges.*lower edgeThreshold \(now 1\)/);
    } finally {
      if (before === undefined) delete process.env.CIRCUIT_MEMORY_LIMIT_BYTES;
      else process.env.CIRCUIT_MEMORY_LIMIT_BYTES = before;
    }
    expect(pruneGraph(g, { nodeThreshold: 1, edgeThreshold: 1 }).edges.weight.length).toBeGreaterThan(3);
  });
});

describe('bad input', () => {
  it('rejects a cycle reachable from the logits', () => {
    // y ← a, a ← b, b ← a  (features 0, 1; 1 layer, 1 position)
    const g = emptyGraph({
      nLayers: 1,
      nPositions: 1,
      features: [
        [0, 0, 0],
        [0, 0, 1],
      ],
      logits: [{ tokenId: 1, p: 1, token: 'x' }],
    });
    const N = nodeLayout(g.nodes).total; // 2 + 1 + 1 + 1
    g.adjacency[4 * N + 0] = 1;
    g.adjacency[0 * N + 1] = 1;
    g.adjacency[1 * N + 0] = 1;
    const e = expectEngineError(() => pruneGraph(g), 'argument');
    expect(e.message).toMatch(/cycle/);
    expectEngineError(
      () => computeInfluence(normalizeAdjacency(g.adjacency, N), N, logitWeights(g)),
      'argument',
    );
  });

  it('rejects non-finite entries, bad thresholds, bad pins and wrong sizes', () => {
    const g = handGraph();
    const bad = { ...g, adjacency: g.adjacency.slice() };
    bad.adjacency[6 * 8 + 3] = Number.NaN;
    expect(expectEngineError(() => pruneGraph(bad)).message).toMatch(/\[6, 3\]/);
    expectEngineError(() => pruneGraph(g, { nodeThreshold: 1.5 }), 'argument');
    expectEngineError(() => pruneGraph(g, { edgeThreshold: Number.NaN }), 'argument');
    expect(expectEngineError(() => pruneGraph(g, { pinned: [8] })).field).toBe('pinned[0]');
    expectEngineError(() => pruneGraph(g, { pinned: [0.5] }), 'argument');
    expectEngineError(() => pruneGraph({ ...g, adjacency: new Float32Array(63) }), 'shape');
    expectEngineError(() => computeInfluence(new Float32Array(4).fill(-1), 2, [0, 1]), 'argument');
    expectEngineError(() => computeInfluence(new Float32Array(4), 2, [0, -1]), 'argument');
  });
});
