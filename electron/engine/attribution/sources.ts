/**
 * Sources and the column space the backward pass contracts against: every active feature
 * (ordered by layer, position, index), every error term (l·T + p) and every token.
 * For each MLP write layer m, the vectors written there are grouped by position into a
 * padded [T, d, n_m] block (features a·W_dec — CLT: every source layer s ≤ m, slot m−s —
 * then the error vector), with a map from each block column to its global column.
 */
import { readActiveDecoderRows } from '../model/replacement.ts';
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
  let nActive = 0;
  for (const a of cache.active) for (const p of a.positions) if (p !== 0) nActive++;
  // Active features ordered by (layer, position, index): the order `cache.active` has.
  const featureLayer = new Int32Array(nActive);
  const featurePosition = new Int32Array(nActive);
  const featureIndex = new Int32Array(nActive);
  const featureActivation = new Float32Array(nActive);
  let c = 0;
  for (const a of cache.active) {
    for (let i = 0; i < a.values.length; i++) {
      if (a.positions[i] === 0) continue; // BOS features are zeroed upstream; never sources
      featureLayer[c] = a.layer;
      featurePosition[c] = a.positions[i];
      featureIndex[c] = a.features[i];
      featureActivation[c] = a.values[i];
      c++;
    }
  }
  const errorOffset = nActive;
  const tokenOffset = nActive + L * T;
  const decoderRows = cache.decoderRows ?? readActiveDecoderRows(set, cache.active);

  // Features written at each (write layer m, position p), then the error term: block widths.
  const count = Array.from({ length: L }, () => new Int32Array(T).fill(1));
  for (let f = 0; f < nActive; f++) {
    const slots = decoderRows[featureLayer[f]].slots;
    for (let j = 0; j < slots; j++) count[featureLayer[f] + j][featurePosition[f]]++;
  }
  const blocks = count.map((perPos) => {
    // Widths padded to a multiple of 4 (zero vectors, column −1): GPU matrix kernels take their
    // vectorized path only when every inner and outer dimension is (ONNX Runtime WebGPU's vec4).
    const n = Math.ceil(Math.max(...perPos) / 4) * 4;
    return { n, columns: new Int32Array(T * n).fill(-1), vectors: new Float32Array(T * d * n) };
  });

  // Where each layer's features sit: `cache.active[s]` is ordered by (position, index), so a
  // position's features are one run, and the global column is the layer's offset plus the
  // entry's rank after the layer's BOS entries.
  const layerStart = new Int32Array(L);
  const runStart = cache.active.map((a, s) => {
    const start = new Int32Array(T + 1);
    for (const p of a.positions) start[p + 1]++;
    for (let p = 0; p < T; p++) start[p + 1] += start[p];
    if (s + 1 < L) layerStart[s + 1] = layerStart[s] + a.values.length - start[1];
    return start;
  });

  // Block column j at (m, p) holds a·W_dec rows (by source layer, then index), then the error
  // vector. The block is [d, n] per position, so a column is written with a stride of n.
  const pending: { j: number; src: Float32Array; offset: number; scale: number }[] = [];
  for (let m = 0; m < L; m++) {
    const { n, columns, vectors } = blocks[m];
    for (let p = 1; p < T; p++) {
      // Sources that write layer m: every layer s ≤ m for a CLT (slot m − s), layer m for a PLT.
      for (let s = 0; s <= m; s++) {
        const rows = decoderRows[s];
        if (m - s >= rows.slots) continue;
        const a = cache.active[s];
        const bos = runStart[s][1];
        for (let i = runStart[s][p]; i < runStart[s][p + 1]; i++) {
          const j = pending.length;
          pending.push({
            j,
            src: rows.rows,
            offset: (rows.rowOf[a.features[i]] * rows.slots + (m - s)) * d,
            scale: a.values[i],
          });
          columns[p * n + j] = layerStart[s] + i - bos;
        }
      }
      const j = pending.length;
      pending.push({ j, src: cache.errors[m], offset: p * d, scale: 1 });
      columns[p * n + j] = errorOffset + m * T + p;
      // Rows k0 … k0+63 of this position's [d, n] block stay in cache while every column is written.
      const base = p * d * n;
      for (let k0 = 0; k0 < d; k0 += 64) {
        const k1 = Math.min(d, k0 + 64);
        for (const { j, src, offset, scale } of pending) {
          let w = base + k0 * n + j;
          for (let k = offset + k0; k < offset + k1; k++, w += n) vectors[w] = scale * src[k];
        }
      }
      pending.length = 0;
    }
    // Position 0 (BOS) has no feature sources; its error column is zero (errors are zeroed there).
    columns[0] = errorOffset + m * T;
  }

  return {
    nActive,
    featureLayer,
    featurePosition,
    featureIndex,
    featureActivation,
    errorOffset,
    tokenOffset,
    nColumns: tokenOffset + T,
    blocks,
  };
}
