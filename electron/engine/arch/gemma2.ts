/**
 * Gemma-2: (1+w) RMSNorm with pre and post norms around attention and MLP, embeddings
 * scaled by √hidden, attention and final logit soft-capping, sliding window on even layers,
 * GQA, gelu_tanh gated MLP, tied embeddings.
 */
import { EngineError } from '../errors.ts';
import type { ArchitectureFamily } from './family.ts';
import { llamaLayerWeights } from './llama.ts';

export const gemma2: ArchitectureFamily = {
  family: 'gemma2',
  modelTypes: ['gemma2'],
  parseConfig(cfg) {
    const hiddenSize = cfg.positiveInt('hidden_size');
    const nHeads = cfg.positiveInt('num_attention_heads');
    const nKvHeads = cfg.positiveInt('num_key_value_heads', nHeads);
    if (nHeads % nKvHeads !== 0) {
      throw new EngineError('config', 'num_attention_heads is not a multiple of num_key_value_heads', {
        file: cfg.file,
        field: 'num_key_value_heads',
      });
    }
    const headDim = cfg.positiveInt('head_dim', Math.floor(hiddenSize / nHeads));
    const nLayers = cfg.positiveInt('num_hidden_layers');
    const act = cfg.string('hidden_activation', cfg.string('hidden_act', 'gelu_pytorch_tanh'));
    if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_tanh') {
      throw new EngineError(
        'unsupported',
        `hidden_activation "${act}" is not supported (gelu_pytorch_tanh is)`,
        {
          file: cfg.file,
          field: 'hidden_activation',
        },
      );
    }
    const window = cfg.optionalNumber('sliding_window');
    const layerTypes = cfg.raw['layer_types'];
    let sliding: boolean[];
    if (Array.isArray(layerTypes)) {
      if (layerTypes.length !== nLayers) {
        throw new EngineError(
          'config',
          `layer_types has ${layerTypes.length} entries for ${nLayers} layers`,
          {
            file: cfg.file,
            field: 'layer_types',
          },
        );
      }
      sliding = layerTypes.map((t) => t === 'sliding_attention');
    } else {
      sliding = Array.from({ length: nLayers }, (_, i) => i % 2 === 0);
    }
    return {
      family: 'gemma2',
      modelType: cfg.string('model_type'),
      hiddenSize,
      nLayers,
      nHeads,
      nKvHeads,
      headDim,
      intermediateSize: cfg.positiveInt('intermediate_size'),
      vocabSize: cfg.positiveInt('vocab_size'),
      maxPositions: cfg.positiveInt('max_position_embeddings', 8192),
      normKind: 'rms',
      normEps: cfg.number('rms_norm_eps', 1e-6),
      normGainOffset: 1,
      mlpActivation: 'gelu_tanh',
      rope: cfg.rope(10000),
      attentionScale: 1 / Math.sqrt(cfg.number('query_pre_attn_scalar', headDim)),
      attnSoftcap: cfg.optionalNumber('attn_logit_softcapping'),
      finalSoftcap: cfg.optionalNumber('final_logit_softcapping'),
      slidingWindows: sliding.map((s) => (s && window !== undefined ? window : undefined)),
      tiedEmbeddings: cfg.boolean('tie_word_embeddings', true),
      embedScale: Math.sqrt(hiddenSize),
      qkNorm: false,
      torchDtype: cfg.dtype(),
      bosTokenId: cfg.optionalNumber('bos_token_id'),
    };
  },
  weightNames(cfg, has) {
    return {
      embed: 'model.embed_tokens.weight',
      finalNorm: { weight: 'model.norm.weight' },
      lmHead: cfg.tiedEmbeddings ? undefined : 'lm_head.weight',
      layers: Array.from({ length: cfg.nLayers }, (_, i) => {
        const p = `model.layers.${i}`;
        return {
          ...llamaLayerWeights(i, cfg, has),
          lnPostAttn: { weight: `${p}.post_attention_layernorm.weight` },
          ln2: { weight: `${p}.pre_feedforward_layernorm.weight` },
          lnPostFf: { weight: `${p}.post_feedforward_layernorm.weight` },
        };
      }),
    };
  },
};
