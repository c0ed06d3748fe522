/**
 * A cross-layer transcoder layer l: `W_enc_{l}.safetensors` = {W_enc_{l} [d_t, d], b_enc_{l}
 * [d_t], b_dec_{l} [d] (the decoder bias of *output* layer l), optional threshold_{l} [d_t]}
 * and `W_dec_{l}.safetensors` = {W_dec_{l} [d_t, L−l, d]} (slot j writes layer l+j).
 * Decoders are far too large to load: only the header is read here; rows on demand.
 * Default hooks: hook_resid_mid → hook_mlp_out.
 */
import { openSafetensors } from '../checkpoint/safetensors.ts';
import type { TensorStore } from '../checkpoint/tensor.ts';
import type { CltLayerFiles } from './discover.ts';
import { closeQuietly, findTensor, type LayerSource, requireTensor } from './layer-source.ts';

export const CLT_READ_HOOK = 'hook_resid_mid';
export const CLT_WRITE_HOOK = 'hook_mlp_out';

export function openCltLayer(files: CltLayerFiles): LayerSource {
  const l = files.layer;
  const stores: TensorStore[] = [];
  try {
    const enc = openSafetensors(files.encoderFile);
    stores.push(enc);
    const dec = openSafetensors(files.decoderFile);
    stores.push(dec);
    return {
      layer: l,
      files: [files.encoderFile, files.decoderFile],
      stores,
      refs: {
        W_enc: requireTensor(enc, [`W_enc_${l}`], files.encoderFile),
        b_enc: requireTensor(enc, [`b_enc_${l}`], files.encoderFile),
        b_dec: requireTensor(enc, [`b_dec_${l}`], files.encoderFile),
        threshold: findTensor(enc, [`threshold_${l}`]),
        W_dec: requireTensor(dec, [`W_dec_${l}`], files.decoderFile),
        W_skip: undefined,
        k: undefined,
      },
      encoderTransposedByDefault: false,
      decoderTransposedByDefault: false,
    };
  } catch (e) {
    closeQuietly(stores);
    throw e;
  }
}
