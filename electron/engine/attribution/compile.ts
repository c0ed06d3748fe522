/**
 * Compiles the backward and frozen-forward graphs of a model + transcoder set. They reuse
 * the forward graph's weights: its cache entry lists where every weight's bytes are
 * (weights-index.json), and those files are hard-linked into this entry, so no weight is
 * decoded or stored twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CompiledForward } from '../model/forward-graph.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { readWeightIndex, SharedWeightSource } from '../model/shared-weight-source.ts';
import { cacheKey, defaultCacheRoot, getOrCompile } from '../onnx/compile-cache.ts';
import { ExternalWeights } from '../onnx/external-weights.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { emitBackwardGraph, emitFrozenForwardGraph, type LinearModelTranscoderInfo } from './linear-model.ts';

export interface CompiledLinearModel {
  backwardPath: string;
  frozenForwardPath: string;
  cacheDir: string;
  cacheHit: boolean;
}

export function compileLinearModel(
  model: OpenedModel,
  set: TranscoderSet,
  forward: CompiledForward,
  cacheRoot = defaultCacheRoot(),
): CompiledLinearModel {
  const key = cacheKey({
    kind: 'linear',
    forward: path.basename(forward.cacheDir),
    transcoders: set.contentKey(),
  });
  const entry = getOrCompile(cacheRoot, key, (dir) => {
    const index = readWeightIndex(forward.cacheDir);
    const skipWeights = new ExternalWeights(dir, 'skip-weights.bin');
    try {
      // W_skip is the one weight the forward graph does not hold; written once, shared by both graphs.
      const skipData = Array.from({ length: set.nLayers }, (_, l) => {
        const w = set.kind === 'plt' ? set.skipFloat32(l) : null;
        return w ? skipWeights.addFloat32(w) : undefined;
      });
      for (const [file, emit] of [
        ['backward.onnx', emitBackwardGraph],
        ['frozen-forward.onnx', emitFrozenForwardGraph],
      ] as const) {
        const g = new GraphBuilder(file.replace('.onnx', ''));
        const source = new SharedWeightSource(g, index, forward.cacheDir, dir);
        const tc: LinearModelTranscoderInfo = {
          readHook: set.readHook,
          writeHook: set.writeHook,
          skip: skipData.map((data, l) =>
            data ? g.initializer(`tc:${l}:W_skip`, 'float32', [set.dModel, set.dModel], data) : undefined,
          ),
        };
        emit(g, model.config, model.weightNames, source, tc);
        fs.writeFileSync(path.join(dir, file), g.serialize());
      }
    } finally {
      skipWeights.close();
    }
  });
  return {
    backwardPath: path.join(entry.dir, 'backward.onnx'),
    frozenForwardPath: path.join(entry.dir, 'frozen-forward.onnx'),
    cacheDir: entry.dir,
    cacheHit: entry.hit,
  };
}
