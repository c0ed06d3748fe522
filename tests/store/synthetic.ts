/**
 * Synthetic raw attribution graphs with circuit-tracer's structure (for store tests and
 * bench/store.ts): features read from features and errors of lower layers and tokens at
 * positions ≤ theirs; logits read from everything. About `edgesPerRow` nonzero sources per
 * feature / logit row. Deterministic in `seed`.
 */
import type { RawAttributionGraph } from '../../electron/engine/attribution/graph-types.ts';
import { nodeLayout } from '../../electron/engine/attribution/graph-types.ts';
import type { PrunedGraph } from '../../electron/engine/pruning/index.ts';
import { denseToCsr } from '../../electron/store/graph-file.ts';
import { prng } from '../fixtures/prng.ts';

export { prng };

export interface SyntheticOptions {
  nLayers?: number;
  nPositions?: number;
  nFeatures?: number;
  nLogits?: number;
  edgesPerRow?: number;
  dTranscoder?: number;
}

export function syntheticGraph(seed: number, o: SyntheticOptions = {}): RawAttributionGraph {
  const rand = prng(seed);
  const L = o.nLayers ?? 4;
  const T = o.nPositions ?? 6;
  const F = o.nFeatures ?? 120;
  const K = o.nLogits ?? 4;
  const per = o.edgesPerRow ?? 12;
  const dT = o.dTranscoder ?? 4096;
  const feats: Array<[number, number, number]> = [];
  const seen = new Set<string>();
  while (feats.length < F) {
    const f: [number, number, number] = [
      Math.floor(rand() * L),
      1 + Math.floor(rand() * (T - 1)),
      Math.floor(rand() * dT),
    ];
    const key = f.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    feats.push(f);
  }
  feats.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const raw = Array.from({ length: K }, () => 0.05 + rand());
  const sum = raw.reduce((a, b) => a + b, 0) * 1.05;
  const probs = raw.map((x) => x / sum).sort((a, b) => b - a);
  const nodes = {
    nLayers: L,
    nPositions: T,
    promptTokenIds: Int32Array.from({ length: T }, (_, p) => (p === 0 ? 2 : 100 + ((p * 37) % 900))),
    promptTokens: Array.from({ length: T }, (_, p) => (p === 0 ? '<bos>' : ` w${p}`)),
    features: {
      layer: Int32Array.from(feats, (f) => f[0]),
      position: Int32Array.from(feats, (f) => f[1]),
      index: Int32Array.from(feats, (f) => f[2]),
      activation: Float32Array.from(feats, () => 0.5 + 4 * rand()),
    },
    logits: {
      tokenId: Int32Array.from(probs, (_, k) => 1000 + k),
      probability: Float32Array.from(probs),
      token: probs.map((_, k) => ` out${k}`),
    },
  };
  const lay = nodeLayout(nodes);
  const N = lay.total;
  const A = new Float32Array(N * N);
  const layerOf = (i: number) =>
    i < lay.errorOffset ? feats[i][0] : i < lay.tokenOffset ? Math.floor((i - lay.errorOffset) / T) : -1;
  const posOf = (i: number) =>
    i < lay.errorOffset ? feats[i][1] : i < lay.tokenOffset ? (i - lay.errorOffset) % T : i - lay.tokenOffset;
  const sources = lay.logitOffset; // features, errors, tokens
  const fill = (t: number, allowed: (s: number) => boolean) => {
    let placed = 0;
    for (let tries = 0; placed < per && tries < per * 20; tries++) {
      const s = Math.floor(rand() * sources);
      if (!allowed(s)) continue;
      const v = (rand() - 0.3) * 2;
      if (v === 0 || A[t * N + s] !== 0) continue;
      A[t * N + s] = v;
      placed++;
    }
  };
  for (let t = 0; t < lay.nFeatures; t++) {
    const l = feats[t][0];
    const p = feats[t][1];
    fill(t, (s) => posOf(s) <= p && layerOf(s) < l);
    // every feature reads its own token so it is never isolated
    A[t * N + lay.tokenOffset + p] = 0.25 + rand();
  }
  for (let k = 0; k < K; k++) fill(lay.logitOffset + k, () => true);
  return { nodes, adjacency: A };
}

/** A view holding the whole graph: every node, every nonzero edge in (target, source) order. */
export function wholeGraphView(g: RawAttributionGraph): PrunedGraph {
  const N = nodeLayout(g.nodes).total;
  const csr = denseToCsr(g.adjacency, N);
  const target = new Int32Array(csr.col.length);
  for (let t = 0; t < N; t++) target.fill(t, csr.rowPtr[t], csr.rowPtr[t + 1]);
  return {
    keptNodes: Int32Array.from({ length: N }, (_, i) => i),
    nodeInfluence: Float32Array.from({ length: N }, (_, i) => (i + 1) / N),
    edges: { target, source: csr.col, weight: csr.val },
    replacementScore: 0.5,
    completenessScore: 0.5,
    nodeThreshold: 1,
    edgeThreshold: 1,
  };
}
