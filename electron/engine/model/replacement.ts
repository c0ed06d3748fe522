/**
 * The replacement model's MLP side, computed sparsely: active features (COO) from dense
 * activations, their reconstruction from decoder rows of active features only, and the
 * error term `mlp_out − recon` that makes the replacement model exact.
 *
 * PLT:  recon[l] = a_l·W_dec_l + b_dec_l (+ x_l·W_skip_lᵀ)
 * CLT:  recon[m] = b_dec[m] + Σ_{s≤m} a_s·W_dec_s[:, m−s, :]
 */
import type { TranscoderSet } from '../transcoders/types.ts';

export interface ActiveFeatures {
  layer: number;
  positions: Int32Array;
  features: Int32Array;
  values: Float32Array;
}

/** Non-zero entries of a dense [T, d_t] activation matrix, ordered by (position, feature). */
export function activeFeatures(acts: Float32Array, T: number, dT: number, layer: number): ActiveFeatures {
  const pos: number[] = [];
  const feat: number[] = [];
  const val: number[] = [];
  for (let p = 0; p < T; p++) {
    for (let f = 0; f < dT; f++) {
      const a = acts[p * dT + f];
      if (a !== 0) {
        pos.push(p);
        feat.push(f);
        val.push(a);
      }
    }
  }
  return {
    layer,
    positions: Int32Array.from(pos),
    features: Int32Array.from(feat),
    values: Float32Array.from(val),
  };
}

/**
 * Decoder rows of one source layer's active features, read once and shared by the
 * reconstruction and the attribution's source space: `rowOf[f]` is feature f's row in `rows`
 * ([n, slots, d]; −1 for features not active anywhere in the prompt).
 */
export interface ActiveDecoderRows {
  layer: number;
  slots: number;
  rowOf: Int32Array;
  rows: Float32Array;
}

export function readActiveDecoderRows(
  set: TranscoderSet,
  active: readonly ActiveFeatures[],
): ActiveDecoderRows[] {
  const L = set.nLayers;
  return active.map((a) => {
    const dT = set.dTranscoderPerLayer[a.layer];
    const rowOf = new Int32Array(dT).fill(-1);
    for (const f of a.features) rowOf[f] = 0;
    const unique: number[] = [];
    for (let f = 0; f < dT; f++) if (rowOf[f] === 0) rowOf[f] = unique.push(f) - 1;
    const slots = set.kind === 'clt' ? L - a.layer : 1;
    const rows = unique.length ? set.decoderRowsFloat32(a.layer, unique) : new Float32Array(0);
    return { layer: a.layer, slots, rowOf, rows };
  });
}

/**
 * Reconstructions at every write layer, [T, d] each. `readInputs[l]` ([T, d]) is needed only
 * for layers with W_skip; `decoderRows` (readActiveDecoderRows) saves reading them again.
 */
export function reconstruct(
  set: TranscoderSet,
  active: readonly ActiveFeatures[],
  T: number,
  readInputs?: readonly (Float32Array | undefined)[],
  decoderRows: readonly ActiveDecoderRows[] = readActiveDecoderRows(set, active),
): Float32Array[] {
  const d = set.dModel;
  const L = set.nLayers;
  const recon = Array.from({ length: L }, (_, m) => {
    const out = new Float32Array(T * d);
    const b = set.decoderBiasFloat32(m);
    for (let p = 0; p < T; p++) out.set(b, p * d);
    return out;
  });
  active.forEach((a, i) => {
    const s = a.layer;
    const { rows, rowOf, slots } = decoderRows[i];
    for (let e = 0; e < a.values.length; e++) {
      const o = a.positions[e] * d;
      const v = a.values[e];
      const base = rowOf[a.features[e]] * slots * d;
      for (let j = 0; j < slots; j++) {
        const out = recon[s + j];
        const r = base + j * d;
        for (let k = 0; k < d; k++) out[o + k] += v * rows[r + k];
      }
    }
  });
  if (set.kind === 'plt') {
    for (let l = 0; l < L; l++) {
      const skip = set.skipFloat32(l);
      if (!skip) continue;
      const x = readInputs?.[l];
      if (!x) throw new Error(`reconstruct: layer ${l} has W_skip but no read input was given`);
      const out = recon[l];
      for (let p = 0; p < T; p++) {
        for (let i = 0; i < d; i++) {
          let acc = 0;
          for (let k = 0; k < d; k++) acc += x[p * d + k] * skip[i * d + k];
          out[p * d + i] += acc;
        }
      }
    }
  }
  return recon;
}

/**
 * Error terms `mlp_out − recon`, [T, d] per layer. Position 0 (BOS) is zeroed as
 * attribution.md §8 fixes: there the whole MLP output (minus a skip term) is a constant.
 */
export function reconstructionErrors(
  mlpOut: readonly Float32Array[],
  recon: readonly Float32Array[],
  d: number,
): Float32Array[] {
  return mlpOut.map((m, l) => {
    const r = recon[l];
    const e = new Float32Array(m.length);
    for (let i = d; i < m.length; i++) e[i] = m[i] - r[i];
    return e;
  });
}
