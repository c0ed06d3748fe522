/**
 * Targets: logit targets (the top next tokens, demeaned pre-softcap logits read at the
 * unembedding's input) and feature targets (pre-activations at the transcoder's read
 * hook), each as a read vector in residual space at an injection slot, so that
 * target value = read vector · residual + constant under the frozen model.
 */
import type { NormWeights } from '../arch/family.ts';
import type { OpenedModel } from '../model/open-model.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import type { ForwardCache } from './forward-cache.ts';
import { featureReadSlot, finalSlot } from './linear-model.ts';
import type { ResolvedTarget } from './target-spec.ts';

export interface Target {
  slot: number;
  position: number;
  /** [d] read vector in residual space. */
  vector: Float32Array;
}

/** A token's probability under the softmax of `logits` (max-shifted). */
export function softmaxProbability(logits: Float32Array): (id: number) => number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return (id) => Math.exp(logits[id] - max) / sum;
}

/** The top `maxN` next tokens, shortest prefix with cumulative probability ≥ `desired`. */
export function selectLogitTokens(cache: ForwardCache, maxN: number, desired: number) {
  const row = cache.logits; // the last position's
  const probability = softmaxProbability(row);
  const chosen: { tokenId: number; prob: number }[] = [];
  let cumulative = 0;
  for (const id of topIndices(row, maxN)) {
    const prob = probability(id);
    chosen.push({ tokenId: id, prob });
    cumulative += prob;
    if (cumulative >= desired) break;
  }
  return chosen;
}

/**
 * The indices of the `k` largest values, largest first (ties: lower index first), in one pass
 * that keeps the k best sorted: a vocabulary of 256k is not sorted for 10 logits.
 */
export function topIndices(values: Float32Array, k: number): number[] {
  const top: number[] = [];
  const n = Math.min(k, values.length);
  if (n <= 0) return top;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (top.length === n) {
      if (!(v > values[top[n - 1]])) continue;
      top.pop();
    }
    let j = top.length;
    while (j > 0 && v > values[top[j - 1]]) j--;
    top.splice(j, 0, i);
  }
  return top;
}

export function normGain(model: OpenedModel, w: NormWeights): Float32Array {
  const g = model.tensors.readFloat32(w.weight);
  return model.config.normGainOffset ? g.map((v) => Math.fround(1 + v)) : g;
}

/** Transposed frozen norm applied to one vector: scale · center(gain ⊙ w). */
export function normTransposeVector(
  w: Float32Array,
  scale: number,
  gain: Float32Array | undefined,
  centered: boolean,
): Float32Array {
  const out = new Float32Array(w.length);
  let mean = 0;
  for (let i = 0; i < w.length; i++) {
    out[i] = gain ? w[i] * gain[i] : w[i];
    mean += out[i];
  }
  mean = centered ? mean / w.length : 0;
  for (let i = 0; i < w.length; i++) out[i] = (out[i] - mean) * scale;
  return out;
}

/** Reads a target's value from frozen residuals (the forward counterpart of the read vector). */
export type ReadAffine = (residual: Float32Array, position: number) => Float32Array;

export class TargetBuilder {
  private readonly finalGain: Float32Array;
  private readonly ln2Gains: Float32Array[];
  private readonly centered: boolean;
  private readonly unembedName: string;

  constructor(
    private readonly model: OpenedModel,
    private readonly set: TranscoderSet,
    private readonly cache: ForwardCache,
  ) {
    const names = model.weightNames;
    this.finalGain = normGain(model, names.finalNorm);
    this.ln2Gains = set.readHook === 'mlp.hook_in' ? names.layers.map((l) => normGain(model, l.ln2)) : [];
    this.centered = model.config.normKind === 'layer';
    this.unembedName = names.lmHead ?? names.embed;
  }

  /** Whether feature targets read the residual before attention (else after it). */
  get readsResidPre(): boolean {
    return this.set.readHook === 'hook_resid_pre';
  }

  /** u_k − mean_v u_v, the logit target's read vector at the unembedding's input. */
  logitDirection(tokenId: number): Float32Array {
    const u = this.model.tensors.readRowsFloat32(this.unembedName, [tokenId]);
    const mean = this.cache.unembedMean;
    return u.map((v, i) => v - mean[i]);
  }

  logitTarget(tokenId: number): Target {
    return this.directionTarget(this.logitDirection(tokenId));
  }

  /**
   * A caller's target's direction at the unembedding's input: Σ c·(u_k − mean) for token and
   * combination targets (summed in float64), the given vector for a vector target.
   */
  resolvedDirection(t: ResolvedTarget): Float32Array {
    if (t.vector) return t.vector;
    const terms = t.terms ?? [];
    if (terms.length === 1 && terms[0].coefficient === 1) return this.logitDirection(terms[0].tokenId);
    const sum = new Float64Array(this.cache.d);
    for (const { tokenId, coefficient } of terms) {
      const u = this.logitDirection(tokenId);
      for (let i = 0; i < sum.length; i++) sum[i] += coefficient * u[i];
    }
    return Float32Array.from(sum);
  }

  /** The target reading `direction` · (the unembedding's input at the last position). */
  directionTarget(direction: Float32Array): Target {
    const T = this.cache.T;
    return {
      slot: finalSlot(this.cache.nLayers),
      position: T - 1,
      vector: normTransposeVector(direction, this.cache.finalScale[T - 1], this.finalGain, this.centered),
    };
  }

  /** `wEnc` is the feature's encoder row [d]. */
  featureTarget(layer: number, position: number, wEnc: Float32Array): Target {
    const hook = this.set.readHook;
    const scale = this.cache.ln2Scale[layer][position];
    const slot = featureReadSlot(hook, layer); // the only layer slots the backward injects at
    switch (hook) {
      case 'hook_resid_pre':
        return { slot, position, vector: wEnc };
      case 'hook_resid_mid':
        return { slot, position, vector: wEnc };
      case 'ln2.hook_normalized':
        return {
          slot,
          position,
          vector: normTransposeVector(wEnc, scale, undefined, this.centered),
        };
      case 'mlp.hook_in':
        return {
          slot,
          position,
          vector: normTransposeVector(wEnc, scale, this.ln2Gains[layer], this.centered),
        };
      default:
        throw new Error(`unsupported read hook ${hook}`);
    }
  }

  /**
   * The transcoder's input at layer l, position p, computed from a frozen residual (resid_pre
   * for hook_resid_pre, else resid_mid) — affine, with the norm's bias where the hook has it.
   */
  readInput(layer: number, residual: Float32Array, position: number): Float32Array {
    const d = this.cache.d;
    const x = residual.subarray(position * d, (position + 1) * d);
    const hook = this.set.readHook;
    if (hook === 'hook_resid_pre' || hook === 'hook_resid_mid') return Float32Array.from(x);
    let mean = 0;
    if (this.centered) {
      for (const v of x) mean += v;
      mean /= d;
    }
    const scale = this.cache.ln2Scale[layer][position];
    const out = new Float32Array(d);
    for (let i = 0; i < d; i++) out[i] = (x[i] - mean) * scale;
    if (hook === 'mlp.hook_in') {
      const gain = this.ln2Gains[layer];
      const biasName = this.model.weightNames.layers[layer].ln2.bias;
      const bias = biasName ? this.model.tensors.readFloat32(biasName) : undefined;
      for (let i = 0; i < d; i++) out[i] = out[i] * gain[i] + (bias ? bias[i] : 0);
    }
    return out;
  }
}
