/**
 * GPT-2: learned position embeddings, LayerNorm with bias, Conv1D weights stored [in, out],
 * fused q|k|v projection, gelu_new MLP, tied unembedding. Tensor names may carry the
 * `transformer.` prefix; the attention mask buffers are ignored.
 */
import { EngineError } from '../errors.ts';
import type { ArchitectureFamily } from './family.ts';

export const gpt2: ArchitectureFamily = {
  family: 'gpt2',
  modelTypes: ['gpt2'],
  parseConfig(cfg) {
    const hiddenSize = cfg.positiveInt('n_embd');
    const nHeads = cfg.positiveInt('n_head');
    if (hiddenSize % nHeads !== 0) {
      throw new EngineError('config', 'n_embd is not a multiple of n_head', {
        file: cfg.file,
        field: 'n_head',
      });
    }
    const act = cfg.string('activation_function', 'gelu_new');
    if (act !== 'gelu_new') {
      throw new EngineError('unsupported', `activation_function "${act}" is not supported (gelu_new is)`, {
        file: cfg.file,
        field: 'activation_function',
      });
    }
    const nLayers = cfg.positiveInt('n_layer');
    const headDim = hiddenSize / nHeads;
    return {
      family: 'gpt2',
      modelType: cfg.string('model_type'),
      hiddenSize,
      nLayers,
      nHeads,
      nKvHeads: nHeads,
      headDim,
      intermediateSize: cfg.has('n_inner') ? cfg.positiveInt('n_inner') : 4 * hiddenSize,
      vocabSize: cfg.positiveInt('vocab_size'),
      maxPositions: cfg.positiveInt('n_positions', 1024),
      normKind: 'layer',
      normEps: cfg.number('layer_norm_epsilon', 1e-5),
      normGainOffset: 0,
      mlpActivation: 'gelu_new',
      attentionScale: cfg.boolean('scale_attn_weights', true) ? 1 / Math.sqrt(headDim) : 1,
      slidingWindows: new Array(nLayers).fill(undefined),
      tiedEmbeddings: true,
      qkNorm: false,
      torchDtype: cfg.dtype(),
      bosTokenId: cfg.optionalNumber('bos_token_id'),
    };
  },
  weightNames(cfg, has) {
    const pre = has('transformer.wte.weight') ? 'transformer.' : '';
    return {
      embed: `${pre}wte.weight`,
      posEmbed: `${pre}wpe.weight`,
      finalNorm: { weight: `${pre}ln_f.weight`, bias: `${pre}ln_f.bias` },
      lmHead: has('lm_head.weight') ? 'lm_head.weight' : undefined,
      layers: Array.from({ length: cfg.nLayers }, (_, i) => {
        const p = `${pre}h.${i}`;
        return {
          ln1: { weight: `${p}.ln_1.weight`, bias: `${p}.ln_1.bias` },
          ln2: { weight: `${p}.ln_2.weight`, bias: `${p}.ln_2.bias` },
          attn: {
            kind: 'fused-conv1d',
            qkv: `${p}.attn.c_attn.weight`,
            qkvBias: `${p}.attn.c_attn.bias`,
            o: `${p}.attn.c_proj.weight`,
            oBias: `${p}.attn.c_proj.bias`,
          },
          mlp: {
            kind: 'conv1d',
            fcIn: `${p}.mlp.c_fc.weight`,
            fcInBias: `${p}.mlp.c_fc.bias`,
            fcOut: `${p}.mlp.c_proj.weight`,
            fcOutBias: `${p}.mlp.c_proj.bias`,
          },
        };
      }),
      ignored: (n) => /\.attn\.(masked_)?bias$/.test(n),
    };
  },
};
