/** The architecture families the engine knows, looked up by config.json's model_type. */
import { EngineError } from '../errors.ts';
import type { ConfigReader, ModelConfig } from './config.ts';
import type { ArchitectureFamily } from './family.ts';
import { gemma2 } from './gemma2.ts';
import { gpt2 } from './gpt2.ts';
import { llama } from './llama.ts';
import { qwen3 } from './qwen3.ts';

export const FAMILIES: readonly ArchitectureFamily[] = [gpt2, llama, gemma2, qwen3];

export function familyFor(cfg: ConfigReader): ArchitectureFamily {
  const modelType = cfg.string('model_type');
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (!family) {
    const known = FAMILIES.flatMap((f) => f.modelTypes).join(', ');
    throw new EngineError('unsupported', `model_type "${modelType}" is not supported (supported: ${known})`, {
      file: cfg.file,
      field: 'model_type',
    });
  }
  return family;
}

export function parseModelConfig(cfg: ConfigReader): { family: ArchitectureFamily; config: ModelConfig } {
  const family = familyFor(cfg);
  return { family, config: family.parseConfig(cfg) };
}
