/**
 * Sources and the column space the backward pass contracts against: every active feature
 * (ordered by layer, position, index), every error term (l·T + p) and every token.
 * For each MLP write layer m, the vectors written there are grouped by position into a
 * padded [T, d, n_m] block (features a·W_dec — CLT: every source layer s ≤ m, slot m−s —
 * then the error vector), with a map from each block column to its global column.
 */
import type { TranscoderSet } from '../transcoders/types.ts';
import type { ForwardCache } from './forward-cache.ts';

export interface WriteLayerBlock {
  /** Columns per position (padded width). */
  n: number;
  /** [T, n]: global column of each block column, or −1 for padding. */
  columns: Int32Array;
  /** [T, d, n] source vectors (position-major, so a prefix of positions is a prefix of the array). */
  vectors: Float32Array;
}

export interface SourceSpace {
  nActive: number;
  featureLayer: Int32Array;
  featurePosition: Int32Array;
  featureIndex: Int32Array;
  featureActivation: Float32Array;
  errorOffset: number;
  tokenOffset: number;
  /** Total columns: active features + L·T errors + T tokens. */
  nColumns: number;
  blocks: WriteLayerBlock[];
}

export function buildSourceSpace(set: TranscoderSet, cache: ForwardCache): SourceSpace {
  const { T, d, nLayers: L } = cache;
  const layer: number[] = [];
  const position: number[] = [];
  const index: number[] = [];
  const activation: number[] = [];
  for (const a of cache.active) {
    for (let i = 0; i < a.values.length; i++) {
      if (a.positions[i] === 0) continue; // BOS features are zeroed upstream; never sources
      layer.push(a.layer);
      position.push(a.positions[i]);
      index.push(a.features[i]);
      activation.push(a.values[i]);
    }
  }
  const nActive = layer.length;
  const errorOffset = nActive;
  const tokenOffset = nActive + L * T;

  // Per write layer m and position p: the (column, vector) pairs written there.
  const entries: { column: number; vector: Float32Array }[][][] = Array.from({ length: L }, () =>
    Array.from({ length: T }, () => []),
  );
  let start = 0;
  for (let s = 0; s < L; s++) {
    let end = start;
    while (end < nActive && layer[end] === s) end++;
    if (end > start) {
      const feats = index.slice(start, end);
      const unique = [...new Set(feats)].sort((a, b) => a - b);
      const rowOf = new Map(unique.map((f, i) => [f, i]));
      const rows = set.decoderRowsFloat32(s, unique);
      const slots = set.kind === 'clt' ? L - s : 1;
      for (let c = start; c < end; c++) {
        const base = rowOf.get(index[c])! * slots * d;
        for (let j = 0; j < slots; j++) {
          const v = new Float32Array(d);
          const a = activation[c];
          for (let k = 0; k < d; k++) v[k] = a * rows[base + j * d + k];
          entries[s + j][position[c]].push({ column: c, vector: v });
        }
      }
    }
    start = end;
  }
  for (let m = 0; m < L; m++) {
    for (let p = 0; p < T; p++) {
      entries[m][p].push({
        column: errorOffset + m * T + p,
        vector: cache.errors[m].subarray(p * d, (p + 1) * d),
      });
    }
  }
  const blocks = entries.map((perPos) => {
    const n = Math.max(1, ...perPos.map((e) => e.length));
    const columns = new Int32Array(T * n).fill(-1);
    const vectors = new Float32Array(T * d * n);
    perPos.forEach((list, p) => {
      list.forEach(({ column, vector }, j) => {
        columns[p * n + j] = column;
        const base = p * d * n + j;
        for (let k = 0; k < d; k++) vectors[base + k * n] = vector[k];
      });
    });
    return { n, columns, vectors };
  });
  return {
    nActive,
    featureLayer: Int32Array.from(layer),
    featurePosition: Int32Array.from(position),
    featureIndex: Int32Array.from(index),
    featureActivation: Float32Array.from(activation),
    errorOffset,
    tokenOffset,
    nColumns: tokenOffset + T,
    blocks,
  };
}
