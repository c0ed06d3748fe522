/**
 * Plain-TS reference encode / reconstruct (straightforward loops, float64 accumulation),
 * used to cross-check the ONNX path on small inputs.
 *
 *   encode:      a = act(x·W_encᵀ + b_enc), with position 0 (BOS) zeroed as circuit-tracer does
 *   PLT recon:   a·W_dec + b_dec (+ x·W_skipᵀ, live at every position)
 *   CLT recon m: b_dec[m] + Σ_{s≤m} a_s·W_dec_s[:, m−s, :]
 */
import { EngineError } from '../errors.ts';
import { applyActivation } from './activation.ts';
import type { TranscoderSet } from './types.ts';

function checkLength(what: string, arr: Float32Array, want: number): void {
  if (arr.length !== want) {
    throw new EngineError('argument', `${what} has ${arr.length} values, expected ${want}`, { field: what });
  }
}

/** x [T, d] (the values at the set's read hook) → activations [T, d_t] of `layer`. */
export function encodeDense(set: TranscoderSet, layer: number, x: Float32Array, T: number): Float32Array {
  const d = set.dModel;
  const W = set.encoderFloat32(layer);
  const b = set.encoderBiasFloat32(layer);
  const dT = b.length;
  checkLength('x', x, T * d);
  const pre = new Float32Array(T * dT);
  for (let t = 1; t < T; t++) {
    const xo = t * d;
    for (let f = 0; f < dT; f++) {
      const wo = f * d;
      let s = 0;
      for (let i = 0; i < d; i++) s += x[xo + i] * W[wo + i];
      pre[t * dT + f] = s + b[f];
    }
  }
  const a = applyActivation(pre, T, dT, set.activation, set.thresholdFloat32(layer));
  a.fill(0, 0, Math.min(dT, a.length)); // position 0
  return a;
}

/** Indices of features with a non-zero activation at some position. */
function activeFeatures(a: Float32Array, T: number, dT: number): number[] {
  const out: number[] = [];
  for (let f = 0; f < dT; f++) {
    for (let t = 0; t < T; t++) {
      if (a[t * dT + f] !== 0) {
        out.push(f);
        break;
      }
    }
  }
  return out;
}

/**
 * Reconstruction [T, d] of the MLP output at `layer` (the set's write hook).
 * `acts`: PLT the layer's activations [T, d_t] (or an array indexed by layer); CLT an array
 * indexed by source layer s holding [T, d_t(s)] for every s ≤ layer.
 * `x` [T, d] (read-hook values) is required when the layer has W_skip.
 */
export function reconstructDense(
  set: TranscoderSet,
  layer: number,
  acts: Float32Array | readonly Float32Array[],
  T: number,
  x?: Float32Array,
): Float32Array {
  const d = set.dModel;
  const out = new Float32Array(T * d);
  const bias = set.decoderBiasFloat32(layer);
  for (let t = 0; t < T; t++) out.set(bias, t * d);

  if (set.kind === 'plt') {
    const a = acts instanceof Float32Array ? acts : acts[layer];
    if (!a) throw new EngineError('argument', `no activations for layer ${layer}`, { field: 'acts' });
    const dT = set.dTranscoderPerLayer[layer];
    checkLength('acts', a, T * dT);
    addDecoded(out, a, T, dT, d, set, layer, 0, 1);
    const skip = set.skipFloat32(layer);
    if (skip) {
      if (!x) throw new EngineError('argument', `layer ${layer} has W_skip: pass x`, { field: 'x' });
      checkLength('x', x, T * d);
      for (let t = 0; t < T; t++) {
        for (let i = 0; i < d; i++) {
          let s = 0;
          for (let j = 0; j < d; j++) s += x[t * d + j] * skip[i * d + j];
          out[t * d + i] += s;
        }
      }
    }
    return out;
  }

  if (acts instanceof Float32Array) {
    throw new EngineError('argument', 'a cross-layer transcoder needs activations of every layer s ≤ m', {
      field: 'acts',
    });
  }
  const L = set.nLayers;
  for (let s = 0; s <= layer; s++) {
    const a = acts[s];
    if (!a) throw new EngineError('argument', `no activations for source layer ${s}`, { field: 'acts' });
    const dT = set.dTranscoderPerLayer[s];
    checkLength(`acts[${s}]`, a, T * dT);
    addDecoded(out, a, T, dT, d, set, s, layer - s, L - s);
  }
  return out;
}

/** out[t] += Σ_f a[t, f] · W_dec_s[f, slot, :] over the active features only. */
function addDecoded(
  out: Float32Array,
  a: Float32Array,
  T: number,
  dT: number,
  d: number,
  set: TranscoderSet,
  s: number,
  slot: number,
  nSlots: number,
): void {
  const feats = activeFeatures(a, T, dT);
  if (feats.length === 0) return;
  const rows = set.decoderRowsFloat32(s, feats); // [n, nSlots, d] (PLT: nSlots = 1)
  const acc = new Float64Array(d);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    let any = false;
    for (let i = 0; i < feats.length; i++) {
      const v = a[t * dT + feats[i]];
      if (v === 0) continue;
      any = true;
      const o = (i * nSlots + slot) * d;
      for (let j = 0; j < d; j++) acc[j] += v * rows[o + j];
    }
    if (any) for (let j = 0; j < d; j++) out[t * d + j] += acc[j];
  }
}
