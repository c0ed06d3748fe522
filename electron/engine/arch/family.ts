/**
 * What an architecture family contributes: how to parse its config.json, and the names of
 * its tensors. The graph itself is emitted by the shared transformer builder; a new family
 * is one file that exports an ArchitectureFamily and is listed in registry.ts.
 */
import type { ConfigReader, ModelConfig } from './config.ts';

export interface NormWeights {
  weight: string;
  bias?: string;
}

export type AttentionWeights =
  | {
      kind: 'separate';
      q: string;
      k: string;
      v: string;
      o: string;
      qBias?: string;
      kBias?: string;
      vBias?: string;
      oBias?: string;
      qNorm?: string;
      kNorm?: string;
    }
  /** GPT-2: one Conv1D [d, 3d] producing q|k|v, and a Conv1D output projection. */
  | { kind: 'fused-conv1d'; qkv: string; qkvBias: string; o: string; oBias: string };

export type MlpWeights =
  | { kind: 'gated'; gate: string; up: string; down: string }
  | { kind: 'conv1d'; fcIn: string; fcInBias: string; fcOut: string; fcOutBias: string };

export interface LayerWeights {
  ln1: NormWeights;
  ln2: NormWeights;
  /** Gemma-2's post-attention and post-feed-forward norms. */
  lnPostAttn?: NormWeights;
  lnPostFf?: NormWeights;
  attn: AttentionWeights;
  mlp: MlpWeights;
}

export interface ModelWeights {
  embed: string;
  posEmbed?: string;
  finalNorm: NormWeights;
  /** Absent when embeddings are tied. */
  lmHead?: string;
  layers: LayerWeights[];
  /** Checkpoint tensors that exist but are not weights (GPT-2's attention mask buffers). */
  ignored?: (name: string) => boolean;
}

export interface ArchitectureFamily {
  family: string;
  modelTypes: readonly string[];
  parseConfig(cfg: ConfigReader): ModelConfig;
  /** `has` tells which tensor names the checkpoint holds (for optional prefixes). */
  weightNames(cfg: ModelConfig, has: (name: string) => boolean): ModelWeights;
}
