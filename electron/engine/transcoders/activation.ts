/**
 * Transcoder activation functions (plain TS, for tests and reference computations), and
 * how a set's activation is decided from config.yaml and the layer files:
 * - config `activation:` wins (relu | jumprelu | topk with `k` from the config or the files);
 * - otherwise JumpReLU when every layer has a threshold, TopK when the files hold `k`,
 *   ReLU when there is neither.
 */
import { EngineError } from '../errors.ts';
import type { TranscoderConfig } from './config.ts';
import type { LayerSource } from './layer-source.ts';
import type { TranscoderActivation } from './types.ts';

/**
 * act(pre) for a [T, dT] row-major block; returns a new array.
 * - JumpReLU: `pre·[pre > θ]` (θ per feature, `threshold` required);
 * - ReLU: `max(pre, 0)`;
 * - TopK: per token keep the k largest pre-activations (ties to the lower index), then ReLU.
 */
export function applyActivation(
  pre: Float32Array,
  T: number,
  dT: number,
  act: TranscoderActivation,
  threshold?: Float32Array | null,
): Float32Array {
  if (pre.length !== T * dT) {
    throw new EngineError(
      'argument',
      `pre-activations have ${pre.length} values, expected T·d_t = ${T * dT}`,
      {
        field: 'pre',
      },
    );
  }
  const out = new Float32Array(pre.length);
  switch (act.kind) {
    case 'relu':
      for (let i = 0; i < pre.length; i++) out[i] = Math.max(pre[i], 0);
      return out;
    case 'jumprelu': {
      if (!threshold || threshold.length !== dT) {
        throw new EngineError(
          'argument',
          `JumpReLU needs a threshold of length ${dT}, got ${threshold ? threshold.length : 'none'}`,
          { field: 'threshold' },
        );
      }
      for (let t = 0; t < T; t++) {
        const o = t * dT;
        for (let f = 0; f < dT; f++) {
          const v = pre[o + f];
          out[o + f] = v > threshold[f] ? v : 0;
        }
      }
      return out;
    }
    case 'topk': {
      const k = act.k;
      if (!Number.isInteger(k) || k < 0) {
        throw new EngineError('argument', `TopK needs a non-negative integer k, got ${k}`, { field: 'k' });
      }
      if (k === 0 || dT === 0) return out;
      const sorted = new Float32Array(dT);
      for (let t = 0; t < T; t++) {
        const row = pre.subarray(t * dT, (t + 1) * dT);
        const o = t * dT;
        if (k >= dT) {
          for (let f = 0; f < dT; f++) out[o + f] = Math.max(row[f], 0);
          continue;
        }
        sorted.set(row);
        sorted.sort(); // ascending, NaN last
        const kth = sorted[dT - k];
        // values above the k-th largest are all kept; ties at kth fill the rest, lowest index first
        let above = 0;
        for (let f = 0; f < dT; f++) if (row[f] > kth) above++;
        let tiesLeft = k - above;
        for (let f = 0; f < dT; f++) {
          const v = row[f];
          let keep = v > kth;
          if (!keep && v === kth && tiesLeft > 0) {
            keep = true;
            tiesLeft--;
          }
          if (keep && v > 0) out[o + f] = v;
        }
      }
      return out;
    }
  }
}

/** Decide the set's activation (see the module comment). Throws EngineError naming file + field/tensor. */
export function resolveActivation(
  cfg: TranscoderConfig | null,
  layers: readonly LayerSource[],
): TranscoderActivation {
  const withThreshold = layers.filter((l) => l.refs.threshold);
  const withoutThreshold = layers.filter((l) => !l.refs.threshold);
  const configured = cfg?.activation;

  if (configured === 'relu') return { kind: 'relu' };
  if (configured === 'jumprelu') {
    const l = withoutThreshold[0];
    if (l) {
      throw new EngineError(
        'missing',
        `config.yaml says activation: jumprelu but layer ${l.layer} has no threshold`,
        { file: l.files[0], tensor: thresholdName(l) },
      );
    }
    return { kind: 'jumprelu' };
  }
  if (configured === 'topk') {
    if (cfg?.k !== undefined) return { kind: 'topk', k: cfg.k };
    const k = fileK(layers);
    if (k === undefined) {
      throw new EngineError(
        'missing',
        'activation: topk needs k (in config.yaml or a `k` tensor per layer)',
        {
          file: cfg?.file,
          field: 'k',
        },
      );
    }
    return { kind: 'topk', k };
  }
  if (withThreshold.length === layers.length && layers.length > 0) return { kind: 'jumprelu' };
  if (withThreshold.length > 0) {
    const l = withoutThreshold[0];
    throw new EngineError(
      'missing',
      `layers ${withThreshold.map((x) => x.layer).join(', ')} have JumpReLU thresholds but layer ${l.layer} has none`,
      { file: l.files[0], tensor: thresholdName(l) },
    );
  }
  const k = fileK(layers);
  if (k !== undefined) return { kind: 'topk', k };
  return { kind: 'relu' };
}

function thresholdName(l: LayerSource): string {
  if (l.refs.W_dec.info.name === `W_dec_${l.layer}`) return `threshold_${l.layer}`;
  return l.files[0].endsWith('.npz') ? 'threshold' : 'activation_function.threshold';
}

/** The `k` all layer files agree on, undefined when none has one. */
function fileK(layers: readonly LayerSource[]): number | undefined {
  let k: number | undefined;
  let kFrom: LayerSource | undefined;
  for (const l of layers) {
    const ref = l.refs.k;
    if (!ref) continue;
    const ctx = { file: ref.info.sourceFile, tensor: ref.info.name };
    const v = ref.store.readFloat32(ref.info.name)[0];
    if (!Number.isInteger(v) || v < 1)
      throw new EngineError('config', `k must be a positive integer, got ${v}`, ctx);
    if (k !== undefined && v !== k) {
      throw new EngineError(
        'unsupported',
        `layers use different TopK k (${k} in ${kFrom?.files[0]}, ${v} here); set k in config.yaml`,
        ctx,
      );
    }
    k = v;
    kFrom = l;
  }
  return k;
}
