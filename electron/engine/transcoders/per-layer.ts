/**
 * A circuit-tracer per-layer transcoder file `layer_{i}.safetensors`: W_enc [d_t, d],
 * W_dec [d_t, d], b_enc [d_t], b_dec [d], optional W_skip [d, d], optional
 * `activation_function.threshold` [d_t] (JumpReLU), optional `k` (TopK). Some published sets
 * store W_enc / W_dec transposed; the orientation is settled against b_enc's length later.
 */
import { openSafetensors } from '../checkpoint/safetensors.ts';
import { closeQuietly, findTensor, type LayerSource, requireTensor } from './layer-source.ts';

export function openPltSafetensorsLayer(layer: number, file: string): LayerSource {
  const store = openSafetensors(file);
  try {
    return {
      layer,
      files: [file],
      stores: [store],
      refs: {
        W_enc: requireTensor(store, ['W_enc'], file),
        b_enc: requireTensor(store, ['b_enc'], file),
        W_dec: requireTensor(store, ['W_dec'], file),
        b_dec: requireTensor(store, ['b_dec'], file),
        threshold: findTensor(store, ['activation_function.threshold', 'threshold']),
        W_skip: findTensor(store, ['W_skip']),
        k: findTensor(store, ['k']),
      },
      encoderTransposedByDefault: false,
      decoderTransposedByDefault: false,
    };
  } catch (e) {
    closeQuietly([store]);
    throw e;
  }
}
