/** Qwen3: Llama plus a per-head RMSNorm on q and k before RoPE. */
import { EngineError } from '../errors.ts';
import type { ArchitectureFamily } from './family.ts';
import { llama, parseLlamaLikeConfig } from './llama.ts';

export const qwen3: ArchitectureFamily = {
  family: 'qwen3',
  modelTypes: ['qwen3'],
  parseConfig(cfg) {
    if (cfg.boolean('use_sliding_window', false)) {
      throw new EngineError('unsupported', 'Qwen3 with use_sliding_window=true is not supported', {
        file: cfg.file,
        field: 'use_sliding_window',
      });
    }
    return { ...parseLlamaLikeConfig(cfg, 'qwen3'), qkNorm: true };
  },
  weightNames: llama.weightNames,
};
