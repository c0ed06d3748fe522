/** Llama (2/3, 3.x): RMSNorm·w, SwiGLU, RoPE (with llama3 scaling), GQA. */
import { EngineError } from '../errors.ts';
import type { ConfigReader, ModelConfig } from './config.ts';
import type { ArchitectureFamily, LayerWeights } from './family.ts';

/** Fields shared by Llama and its descendants (Qwen3). */
export function parseLlamaLikeConfig(cfg: ConfigReader, family: string): ModelConfig {
  const hiddenSize = cfg.positiveInt('hidden_size');
  const nHeads = cfg.positiveInt('num_attention_heads');
  const nKvHeads = cfg.positiveInt('num_key_value_heads', nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new EngineError(
      'config',
      `num_attention_heads (${nHeads}) is not a multiple of num_key_value_heads`,
      {
        file: cfg.file,
        field: 'num_key_value_heads',
      },
    );
  }
  const headDim = cfg.positiveInt('head_dim', Math.floor(hiddenSize / nHeads));
  const act = cfg.string('hidden_act', 'silu');
  if (act !== 'silu') {
    throw new EngineError('unsupported', `hidden_act "${act}" is not supported for ${family} (silu is)`, {
      file: cfg.file,
      field: 'hidden_act',
    });
  }
  const nLayers = cfg.positiveInt('num_hidden_layers');
  return {
    family,
    modelType: cfg.string('model_type'),
    hiddenSize,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    intermediateSize: cfg.positiveInt('intermediate_size'),
    vocabSize: cfg.positiveInt('vocab_size'),
    maxPositions: cfg.positiveInt('max_position_embeddings', 2048),
    normKind: 'rms',
    normEps: cfg.number('rms_norm_eps', 1e-6),
    normGainOffset: 0,
    mlpActivation: 'silu',
    rope: cfg.rope(10000),
    attentionScale: 1 / Math.sqrt(headDim),
    slidingWindows: new Array(nLayers).fill(undefined),
    tiedEmbeddings: cfg.boolean('tie_word_embeddings', false),
    qkNorm: false,
    torchDtype: cfg.dtype(),
    bosTokenId: cfg.optionalNumber('bos_token_id'),
  };
}

export function llamaLayerWeights(i: number, cfg: ModelConfig, has: (n: string) => boolean): LayerWeights {
  const p = `model.layers.${i}`;
  const bias = (n: string) => (has(`${n}.bias`) ? `${n}.bias` : undefined);
  return {
    ln1: { weight: `${p}.input_layernorm.weight` },
    ln2: { weight: `${p}.post_attention_layernorm.weight` },
    attn: {
      kind: 'separate',
      q: `${p}.self_attn.q_proj.weight`,
      k: `${p}.self_attn.k_proj.weight`,
      v: `${p}.self_attn.v_proj.weight`,
      o: `${p}.self_attn.o_proj.weight`,
      qBias: bias(`${p}.self_attn.q_proj`),
      kBias: bias(`${p}.self_attn.k_proj`),
      vBias: bias(`${p}.self_attn.v_proj`),
      oBias: bias(`${p}.self_attn.o_proj`),
      qNorm: cfg.qkNorm ? `${p}.self_attn.q_norm.weight` : undefined,
      kNorm: cfg.qkNorm ? `${p}.self_attn.k_norm.weight` : undefined,
    },
    mlp: {
      kind: 'gated',
      gate: `${p}.mlp.gate_proj.weight`,
      up: `${p}.mlp.up_proj.weight`,
      down: `${p}.mlp.down_proj.weight`,
    },
  };
}

export const llama: ArchitectureFamily = {
  family: 'llama',
  modelTypes: ['llama'],
  parseConfig: (cfg) => parseLlamaLikeConfig(cfg, 'llama'),
  weightNames: (cfg, has) => ({
    embed: 'model.embed_tokens.weight',
    finalNorm: { weight: 'model.norm.weight' },
    lmHead: cfg.tiedEmbeddings ? undefined : 'lm_head.weight',
    layers: Array.from({ length: cfg.nLayers }, (_, i) => llamaLayerWeights(i, cfg, has)),
    ignored: (n) => n.endsWith('.rotary_emb.inv_freq'),
  }),
};
