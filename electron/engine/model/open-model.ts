/**
 * A Hugging Face checkpoint folder opened for the engine: its parsed config, its family,
 * the names of the tensors the forward graph will use, and its tensor store. Opening
 * validates every tensor the family needs (presence and shape) before any heavy work.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../arch/config.ts';
import { readConfigJson } from '../arch/config.ts';
import type { ArchitectureFamily, ModelWeights } from '../arch/family.ts';
import { parseModelConfig } from '../arch/registry.ts';
import { isFloatDType } from '../checkpoint/dtype.ts';
import { openCheckpointTensors } from '../checkpoint/open.ts';
import { assertFinite } from '../checkpoint/store-base.ts';
import type { DType, TensorStore } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import { expectedTensorShapes } from './expected-shapes.ts';

export interface OpenedModel {
  dir: string;
  configFile: string;
  config: ModelConfig;
  family: ArchitectureFamily;
  weightNames: ModelWeights;
  tensors: TensorStore;
  /** name → expected shape for every tensor the forward graph uses. */
  expectedShapes: Map<string, number[]>;
  /** Tensors in the checkpoint the engine does not use (reported by `inspect`). */
  unusedTensors: string[];
  dtypes: Partial<Record<DType, number>>;
  /** Total bytes of the tensor files. */
  bytesOnDisk: number;
  close(): void;
}

export function openModel(dir: string): OpenedModel {
  const resolved = path.resolve(dir);
  if (!fs.existsSync(resolved))
    throw new EngineError('missing', 'model folder does not exist', { file: resolved });
  const cfgReader = readConfigJson(resolved);
  const { family, config } = parseModelConfig(cfgReader);
  const tensors = openCheckpointTensors(resolved);
  try {
    const weightNames = family.weightNames(config, (n) => tensors.has(n));
    const expectedShapes = expectedTensorShapes(config, weightNames);
    const files = new Set<string>();
    const dtypes: Partial<Record<DType, number>> = {};
    for (const [name, shape] of expectedShapes) {
      if (!tensors.has(name)) {
        throw new EngineError('missing', `checkpoint lacks tensor required by ${config.modelType}`, {
          file: tensors.description,
          tensor: name,
        });
      }
      const info = tensors.info(name);
      if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
        throw new EngineError(
          'shape',
          `tensor shape [${info.shape}] disagrees with config.json, which implies [${shape}]`,
          { file: info.sourceFile, tensor: name },
        );
      }
      if (!isFloatDType(info.dtype)) {
        throw new EngineError('dtype', `tensor is ${info.dtype}, model weights must be a float dtype`, {
          file: info.sourceFile,
          tensor: name,
        });
      }
      // 1-D tensors (norm weights, biases) are d-sized: read whole and checked for NaN/Inf
      if (shape.length === 1)
        assertFinite(tensors.readFloat32(name), { file: info.sourceFile, tensor: name });
      files.add(info.sourceFile);
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
    }
    const unusedTensors = tensors
      .names()
      .filter((n) => !expectedShapes.has(n) && !(weightNames.ignored?.(n) ?? false));
    let bytesOnDisk = 0;
    for (const f of files) bytesOnDisk += fs.statSync(f).size;
    return {
      dir: resolved,
      configFile: cfgReader.file,
      config,
      family,
      weightNames,
      tensors,
      expectedShapes,
      unusedTensors,
      dtypes,
      bytesOnDisk,
      close: () => tensors.close(),
    };
  } catch (e) {
    tensors.close();
    throw e;
  }
}
