import type { RawAttributionGraph } from '../../../electron/engine/attribution/graph-types.ts';
import { nodeLayout } from '../../../electron/engine/attribution/graph-types.ts';
import { prng } from '../../fixtures/prng.ts';

export { prng };

export interface GraphSpec {
  nLayers: number;
  nPositions: number;
  /** (layer, position, index) of each feature, already in (layer, position, index) order. */
  features: Array<[number, number, number]>;
  activations?: number[];
  logits: Array<{ tokenId: number; p: number; token: string }>;
  promptTokenIds?: number[];
  promptTokens?: string[];
}

export function emptyGraph(spec: GraphSpec): RawAttributionGraph {
  const T = spec.nPositions;
  const nodes = {
    nLayers: spec.nLayers,
    nPositions: T,
    promptTokenIds: Int32Array.from(spec.promptTokenIds ?? Array.from({ length: T }, (_, p) => 100 + p)),
    promptTokens: spec.promptTokens ?? Array.from({ length: T }, (_, p) => (p === 0 ? '<bos>' : ` t${p}`)),
    features: {
      layer: Int32Array.from(spec.features.map((f) => f[0])),
      position: Int32Array.from(spec.features.map((f) => f[1])),
      index: Int32Array.from(spec.features.map((f) => f[2])),
      activation: Float32Array.from(spec.activations ?? spec.features.map((_, k) => 1 + k / 8)),
    },
    logits: {
      tokenId: Int32Array.from(spec.logits.map((l) => l.tokenId)),
      probability: Float32Array.from(spec.logits.map((l) => l.p)),
      token: spec.logits.map((l) => l.token),
    },
  };
  const N = nodeLayout(nodes).total;
  return { nodes, adjacency: new Float32Array(N * N) };
}

/**
 * A random graph with circuit-tracer's structure: features read from features of lower
 * layers, errors of lower layers and tokens at positions ≤ theirs; logits read from
 * everything. `density` is the probability that an allowed edge exists.
 */
export function randomGraph(
  seed: number,
  opts: {
    nLayers?: number;
    nPositions?: number;
    nFeatures?: number;
    nLogits?: number;
    density?: number;
  } = {},
): RawAttributionGraph {
  const rand = prng(seed);
  const L = opts.nLayers ?? 3;
  const T = opts.nPositions ?? 5;
  const nF = opts.nFeatures ?? 177;
  const nL = opts.nLogits ?? 3;
  const density = opts.density ?? 0.3;
  const feats: Array<[number, number, number]> = [];
  for (let k = 0; k < nF; k++) feats.push([Math.floor(rand() * L), 1 + Math.floor(rand() * (T - 1)), k]);
  feats.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const raw_p = Array.from({ length: nL }, () => 0.05 + rand());
  const sum = raw_p.reduce((a, b) => a + b, 0) * 1.1;
  const probs = raw_p.map((x) => x / sum).sort((a, b) => b - a);
  const g = emptyGraph({
    nLayers: L,
    nPositions: T,
    features: feats,
    logits: probs.map((p, k) => ({ tokenId: 1000 + k, p, token: ` y${k}` })),
  });
  const lay = nodeLayout(g.nodes);
  const N = lay.total;
  const A = g.adjacency;
  const weight = () => (rand() < 0.5 ? -1 : 1) * Math.exp(3 * (rand() - 0.5)) * (rand() < 0.1 ? 10 : 1);
  const f = g.nodes.features;
  for (let t = 0; t < N; t++) {
    const isFeat = t < lay.nFeatures;
    const isLogit = t >= lay.logitOffset;
    if (!isFeat && !isLogit) continue;
    const tl = isFeat ? f.layer[t] : L;
    const tp = isFeat ? f.position[t] : T - 1;
    for (let s = 0; s < lay.logitOffset; s++) {
      let ok: boolean;
      if (s < lay.nFeatures) ok = f.layer[s] < tl && f.position[s] <= tp;
      else if (s < lay.tokenOffset) {
        const e = s - lay.errorOffset;
        const el = Math.floor(e / T);
        const ep = e % T;
        ok = el < tl && ep <= tp && ep > 0;
      } else ok = s - lay.tokenOffset <= tp;
      if (ok && rand() < density) A[t * N + s] = weight();
    }
  }
  return g;
}

const naiveCache = new WeakMap<RawAttributionGraph, Float64Array>();

/** Naive reference: Â in float64, then wᵀ(Â + Â² + …) with explicit matrix powers (cached per graph). */
export function naiveInfluence(g: RawAttributionGraph): Float64Array {
  let inf = naiveCache.get(g);
  if (!inf) {
    inf = naiveInfluenceUncached(g);
    naiveCache.set(g, inf);
  }
  return inf;
}

function naiveInfluenceUncached(g: RawAttributionGraph): Float64Array {
  const lay = nodeLayout(g.nodes);
  const N = lay.total;
  const Ah = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < N; j++) s += Math.abs(g.adjacency[i * N + j]);
    if (s > 0) for (let j = 0; j < N; j++) Ah[i * N + j] = Math.abs(g.adjacency[i * N + j]) / s;
  }
  // S = Â + Â² + … ; P = Â^k
  let P = Ah.slice();
  const S = Ah.slice();
  for (let k = 2; k <= N; k++) {
    const Q = new Float64Array(N * N);
    let nz = false;
    for (let i = 0; i < N; i++) {
      for (let m = 0; m < N; m++) {
        const x = P[i * N + m];
        if (x === 0) continue;
        for (let j = 0; j < N; j++) Q[i * N + j] += x * Ah[m * N + j];
      }
    }
    for (let q = 0; q < N * N; q++) {
      if (Q[q] !== 0) nz = true;
      S[q] += Q[q];
    }
    P = Q;
    if (!nz) break;
  }
  const inf = new Float64Array(N);
  for (let k = 0; k < lay.nLogits; k++) {
    const i = lay.logitOffset + k;
    const wk = g.nodes.logits.probability[k];
    for (let j = 0; j < N; j++) inf[j] += wk * S[i * N + j];
  }
  return inf;
}

/** Smallest prefix of (score desc, index asc) with cumulative share ≥ t; returns kept flags. */
export function refPrefix(scores: number[], t: number): boolean[] {
  const idx = scores.map((_, i) => i).filter((i) => scores[i] > 0);
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  const total = idx.reduce((s, i) => s + scores[i], 0);
  const keep = scores.map(() => false);
  if (!(t > 0) || !(total > 0)) return keep;
  let run = 0;
  for (const i of idx) {
    keep[i] = true;
    run += scores[i];
    if (run / total >= t) break;
  }
  return keep;
}

/**
 * A straightforward dense re-implementation of §5 (circuit-tracer's loop structure), used
 * as an oracle: returns kept node flags and kept edges "t,s".
 */
export function refPrune(
  g: RawAttributionGraph,
  nodeT: number,
  edgeT: number,
  pinned: number[] = [],
): { nodes: boolean[]; edges: Set<string> } {
  const lay = nodeLayout(g.nodes);
  const N = lay.total;
  const A = g.adjacency;
  const inf = naiveInfluence(g);
  const candKeep = refPrefix(Array.from(inf), nodeT);
  // The prefix runs over all nodes (tokens and logits included); only candidates use it.
  const node = Array.from({ length: N }, (_, i) => (i < lay.tokenOffset ? candKeep[i] : true));
  for (const p of pinned) node[p] = true;
  // pruned matrix, normalized
  const Ap = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    if (!node[i]) continue;
    let s = 0;
    for (let j = 0; j < N; j++) if (node[j]) s += Math.abs(A[i * N + j]);
    if (s > 0) for (let j = 0; j < N; j++) if (node[j]) Ap[i * N + j] = Math.abs(A[i * N + j]) / s;
  }
  const w = new Float64Array(N);
  for (let k = 0; k < lay.nLogits; k++) w[lay.logitOffset + k] = g.nodes.logits.probability[k];
  const infP = w.slice();
  let v = w.slice();
  for (let step = 0; step < N; step++) {
    const nv = new Float64Array(N);
    for (let i = 0; i < N; i++) if (v[i] !== 0) for (let j = 0; j < N; j++) nv[j] += v[i] * Ap[i * N + j];
    if (nv.every((x) => x === 0)) break;
    for (let j = 0; j < N; j++) infP[j] += nv[j];
    v = nv;
  }
  const scores: number[] = new Array(N * N).fill(0);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) scores[i * N + j] = Ap[i * N + j] * infP[i];
  const ek = refPrefix(scores, edgeT);
  const exempt = (i: number) => i >= lay.tokenOffset || pinned.includes(i);
  for (;;) {
    let changed = false;
    for (let i = 0; i < lay.tokenOffset; i++) {
      if (!node[i] || exempt(i)) continue;
      let out = false;
      let inn = false;
      for (let t = 0; t < N; t++) if (node[t] && ek[t * N + i]) out = true;
      for (let s = 0; s < N; s++) if (node[s] && ek[i * N + s]) inn = true;
      if (!out || (i < lay.errorOffset && !inn)) {
        node[i] = false;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const edges = new Set<string>();
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) if (ek[i * N + j] && node[i] && node[j]) edges.add(`${i},${j}`);
  return { nodes: node, edges };
}

/**
 * Hand-made graph: 1 layer, 2 positions.
 * order: f0=0, f1=1 (layer 0, pos 1) | e0=2 (l0,p0), e1=3 (l0,p1) | t0=4, t1=5 | y0=6 (p .75), y1=7 (p .25)
 *   f0 ← t0: 1, t1: 3        f1 ← t1: −2
 *   y0 ← f0: 2, f1: 1, e1: 1   y1 ← f1: 3, t1: 1
 */
export function handGraph(): RawAttributionGraph {
  const g = emptyGraph({
    nLayers: 1,
    nPositions: 2,
    features: [
      [0, 1, 5],
      [0, 1, 9],
    ],
    activations: [2.5, 0.75],
    logits: [
      { tokenId: 42, p: 0.75, token: ' Austin' },
      { tokenId: 43, p: 0.25, token: ' Dallas' },
    ],
  });
  const N = 8;
  const set = (t: number, s: number, v: number) => {
    g.adjacency[t * N + s] = v;
  };
  set(0, 4, 1);
  set(0, 5, 3);
  set(1, 5, -2);
  set(6, 0, 2);
  set(6, 1, 1);
  set(6, 3, 1);
  set(7, 1, 3);
  set(7, 5, 1);
  return g;
}
