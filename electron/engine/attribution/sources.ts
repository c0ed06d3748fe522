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

/**
 * The sources written at one MLP write layer, grouped by position into a padded [T, d, n] block.
 * Held compactly: the distinct vectors once (`rows`), and per block column which one and its
 * coefficient — a feature active at several positions has one decoder row here, not one per
 * position. The dense block (`vectors`) is made on first use (the CPU's backward); a GPU builds
 * it in device memory from the same three arrays (source-builder.ts), and an intervention reads
 * the rows directly.
 */
export class WriteLayerBlock {
  private dense?: Float32Array;

  constructor(
    readonly T: number,
    readonly d: number,
    /** Columns per position (padded width). */
    readonly n: number,
    /** [T, n]: global column of each block column, or −1 for padding. */
    readonly columns: Int32Array,
    /**
     * [R, d]: the decoder rows of the features written here (CLT: slot m − s of a source layer
     * s), then the T error vectors (position 0's is zero), then one zero row.
     */
    readonly rows: Float32Array,
    /** [T, n]: each block column's row in `rows` (padding: the zero row). */
    readonly rowIndex: Int32Array,
    /** [T, n]: each block column's coefficient: its feature's activation, 1 for the error, 0 padding. */
    readonly coef: Float32Array,
  ) {}

  /** Bytes of the dense block [T, d, n] float32 (whether made or not). */
  get vectorBytes(): number {
    return this.T * this.d * this.n * 4;
  }

  /**
   * [T, d, n] source vectors, coef · rows[rowIndex] (position-major, so a prefix of positions is
   * a prefix of the array), made on first use.
   */
  get vectors(): Float32Array {
    this.dense ??= this.materialize();
    return this.dense;
  }

  /**
   * The dense block with the frozen post-feed-forward norm folded in, scale[p] · gain[k] · v: the
   * gradient at the write point is scale[p] · gain ⊙ G, so G is contracted with this instead
   * (RMS norm: Gemma's post-norms have no centering). Made from the rows in one pass, so the
   * CPU's backward never holds the unfolded block as well.
   */
  folded(scale: Float32Array, gain: Float32Array): Float32Array {
    return this.materialize(scale, gain);
  }

  private materialize(scale?: Float32Array, gain?: Float32Array): Float32Array {
    const { T, d, n, rows, rowIndex, coef } = this;
    const out = new Float32Array(T * d * n);
    // The block is [d, n] per position, so a column is written with a stride of n; rows k0 … k0+63
    // of a position's block stay in cache while every column is written.
    for (let p = 0; p < T; p++) {
      const base = p * d * n;
      for (let k0 = 0; k0 < d; k0 += 64) {
        const k1 = Math.min(d, k0 + 64);
        for (let j = 0; j < n; j++) {
          const c = coef[p * n + j];
          if (c === 0) continue;
          const src = rowIndex[p * n + j] * d;
          let w = base + k0 * n + j;
          if (scale && gain) {
            const sp = scale[p];
            for (let k = k0; k < k1; k++, w += n) out[w] = Math.fround(c * rows[src + k]) * (sp * gain[k]);
          } else {
            for (let k = src + k0; k < src + k1; k++, w += n) out[w] = c * rows[k];
          }
        }
      }
    }
    return out;
  }
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
  // vector; the rest is padding. Widths are padded to a multiple of 4 (zero vectors, column −1):
  // GPU matrix kernels take their vectorized path only when every inner and outer dimension is
  // (ONNX Runtime WebGPU's vec4).
  const blocks = count.map((perPos, m) => {
    const n = Math.ceil(Math.max(...perPos) / 4) * 4;
    const columns = new Int32Array(T * n).fill(-1);
    const rowIndex = new Int32Array(T * n);
    const coef = new Float32Array(T * n);
    // This layer's distinct decoder rows: (source layer s, row in decoderRows[s]) → row here.
    const local = Array.from({ length: m + 1 }, (_, s) =>
      m - s < decoderRows[s].slots
        ? new Int32Array(decoderRows[s].rows.length / (decoderRows[s].slots * d)).fill(-1)
        : null,
    );
    const picked: { s: number; row: number }[] = [];
    for (let p = 1; p < T; p++) {
      let j = 0;
      // Sources that write layer m: every layer s ≤ m for a CLT (slot m − s), layer m for a PLT.
      for (let s = 0; s <= m; s++) {
        const ids = local[s];
        if (!ids) continue;
        const a = cache.active[s];
        const bos = runStart[s][1];
        for (let i = runStart[s][p]; i < runStart[s][p + 1]; i++, j++) {
          const row = decoderRows[s].rowOf[a.features[i]];
          if (ids[row] < 0) ids[row] = picked.push({ s, row }) - 1;
          rowIndex[p * n + j] = ids[row];
          coef[p * n + j] = a.values[i];
          columns[p * n + j] = layerStart[s] + i - bos;
        }
      }
      columns[p * n + j] = errorOffset + m * T + p;
      rowIndex[p * n + j] = -1 - p; // the error row at p: placed after the decoder rows, below
      coef[p * n + j] = 1;
    }
    // Position 0 (BOS) has no feature sources; its error column is zero (errors are zeroed there).
    columns[0] = errorOffset + m * T;
    rowIndex[0] = -1;
    coef[0] = 1;
    const errorRow = picked.length;
    const zeroRow = errorRow + T;
    const rows = new Float32Array((zeroRow + 1) * d);
    for (const [r, { s, row }] of picked.entries()) {
      const src = decoderRows[s];
      const at = (row * src.slots + (m - s)) * d;
      rows.set(src.rows.subarray(at, at + d), r * d);
    }
    rows.set(cache.errors[m].subarray(0, T * d), errorRow * d);
    for (let i = 0; i < T * n; i++) {
      if (rowIndex[i] < 0) rowIndex[i] = errorRow - 1 - rowIndex[i];
      else if (coef[i] === 0) rowIndex[i] = zeroRow;
    }
    return new WriteLayerBlock(T, d, n, columns, rows, rowIndex, coef);
  });

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
