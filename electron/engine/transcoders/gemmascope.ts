/**
 * A GemmaScope transcoder `layer_{L}/width_16k/average_l0_{N}/params.npz`: W_enc [d, d_sae]
 * (transposed relative to circuit-tracer), W_dec [d_sae, d], b_enc [d_sae], b_dec [d],
 * threshold [d_sae] (JumpReLU); float32. Default hooks: ln2.hook_normalized → hook_mlp_out.
 */
import { openNpz } from '../checkpoint/npz.ts';
import { closeQuietly, findTensor, type LayerSource, requireTensor } from './layer-source.ts';

export const GEMMASCOPE_READ_HOOK = 'ln2.hook_normalized';
export const GEMMASCOPE_WRITE_HOOK = 'hook_mlp_out';

/** npz member names, with or without the `.npy` suffix. */
const names = (base: string): string[] => [base, `${base}.npy`];

export function openGemmaScopeLayer(layer: number, file: string): LayerSource {
  const store = openNpz(file);
  try {
    return {
      layer,
      files: [file],
      stores: [store],
      refs: {
        W_enc: requireTensor(store, names('W_enc'), file),
        b_enc: requireTensor(store, names('b_enc'), file),
        W_dec: requireTensor(store, names('W_dec'), file),
        b_dec: requireTensor(store, names('b_dec'), file),
        threshold: findTensor(store, [...names('threshold'), ...names('activation_function.threshold')]),
        W_skip: findTensor(store, names('W_skip')),
        k: undefined,
      },
      encoderTransposedByDefault: true,
      decoderTransposedByDefault: false,
    };
  } catch (e) {
    closeQuietly([store]);
    throw e;
  }
}
