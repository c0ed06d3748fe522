/**
 * One opened layer of a transcoder set, whatever its layout: which store holds each of its
 * tensors, and how its matrices are documented to be oriented in that layout.
 */

import type { TensorInfo, TensorStore } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import type { LayerTensors } from './types.ts';

export interface TensorRef {
  store: TensorStore;
  info: TensorInfo;
}

/** The store and info of each tensor of a layer (same roles as LayerTensors). */
export interface LayerRefs {
  W_enc: TensorRef;
  b_enc: TensorRef;
  W_dec: TensorRef;
  b_dec: TensorRef;
  threshold?: TensorRef;
  W_skip?: TensorRef;
  k?: TensorRef;
}

export interface LayerSource {
  layer: number;
  /** Files holding the layer (absolute). */
  files: string[];
  /** Stores to close with the set. */
  stores: TensorStore[];
  refs: LayerRefs;
  /** Layout's documented orientation, used when d_t == d makes the shapes ambiguous. */
  encoderTransposedByDefault: boolean;
  decoderTransposedByDefault: boolean;
}

export function layerTensorInfos(src: LayerSource): LayerTensors {
  const r = src.refs;
  const out: LayerTensors = {
    W_enc: r.W_enc.info,
    b_enc: r.b_enc.info,
    W_dec: r.W_dec.info,
    b_dec: r.b_dec.info,
  };
  if (r.threshold) out.threshold = r.threshold.info;
  if (r.W_skip) out.W_skip = r.W_skip.info;
  if (r.k) out.k = r.k.info;
  return out;
}

/** The first of `names` the store holds, or undefined. */
export function findTensor(store: TensorStore, names: readonly string[]): TensorRef | undefined {
  for (const n of names) if (store.has(n)) return { store, info: store.info(n) };
  return undefined;
}

/** Like findTensor, but a missing tensor is EngineError('missing') naming file and tensor. */
export function requireTensor(store: TensorStore, names: readonly string[], file: string): TensorRef {
  const ref = findTensor(store, names);
  if (!ref) {
    const have = store.names().slice(0, 20).join(', ');
    throw new EngineError('missing', `transcoder tensor not found (the file has: ${have})`, {
      file,
      tensor: names[0],
    });
  }
  return ref;
}

/** Close every store, ignoring failures (used on error paths). */
export function closeQuietly(stores: readonly TensorStore[]): void {
  for (const s of stores) {
    try {
      s.close();
    } catch {
      // already failing
    }
  }
}
