/**
 * Compiles (or fetches from the cache) the forward graph of a model, optionally with a
 * transcoder set's encoders, and lists the hooks it can produce.
 */
import fs from 'node:fs';
import path from 'node:path';
import { emitTransformerForward } from '../arch/transformer.ts';
import { cacheKey, defaultCacheRoot, fingerprintFiles, getOrCompile } from '../onnx/compile-cache.ts';
import { ExternalWeights } from '../onnx/external-weights.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import type { OpenedModel } from './open-model.ts';
import { emitTranscoderEncoders } from './transcoder-encoder.ts';
import { CheckpointWeightSource } from './weight-source.ts';

/** name → external data of every checkpoint-derived initializer of the forward graph. */
export const WEIGHT_INDEX_FILE = 'weights-index.json';

export interface CompiledForward {
  modelPath: string;
  cacheDir: string;
  /** Every hook the graph exposes as an output. */
  outputs: string[];
  cacheHit: boolean;
  compileMs: number;
}

export interface CompileOptions {
  cacheRoot?: string;
  transcoders?: TranscoderSet;
}

function modelFiles(model: OpenedModel): string[] {
  const files = new Set<string>([model.configFile]);
  for (const name of model.expectedShapes.keys()) files.add(model.tensors.info(name).sourceFile);
  return [...files];
}

export function compileForward(model: OpenedModel, opts: CompileOptions = {}): CompiledForward {
  const started = performance.now();
  const key = cacheKey({
    kind: 'forward',
    model: fingerprintFiles(modelFiles(model)),
    transcoders: opts.transcoders?.contentKey() ?? null,
  });
  const outputsFile = 'outputs.json';
  const entry = getOrCompile(opts.cacheRoot ?? defaultCacheRoot(), key, (dir) => {
    const g = new GraphBuilder(`${model.config.modelType}-forward`);
    const weights = new ExternalWeights(dir);
    try {
      const source = new CheckpointWeightSource(g, model.tensors, weights);
      const { hooks, positions } = emitTransformerForward(g, model.config, model.weightNames, source);
      if (opts.transcoders) emitTranscoderEncoders(g, opts.transcoders, hooks, positions, source);
      for (const [name, value] of hooks) g.output(value, name);
      fs.writeFileSync(path.join(dir, WEIGHT_INDEX_FILE), JSON.stringify(source.index));
    } finally {
      weights.close();
    }
    fs.writeFileSync(path.join(dir, 'model.onnx'), g.serialize());
    fs.writeFileSync(path.join(dir, outputsFile), JSON.stringify(g.build().outputs.map((o) => o.name)));
  });
  const outputs = JSON.parse(fs.readFileSync(path.join(entry.dir, outputsFile), 'utf8')) as string[];
  return {
    modelPath: entry.modelPath,
    cacheDir: entry.dir,
    outputs,
    cacheHit: entry.hit,
    compileMs: performance.now() - started,
  };
}
