/**
 * Compiles the backward and frozen-forward graphs of a model + transcoder set. They reuse
 * the forward graph's weights: its cache entry lists where every weight's bytes are
 * (weights-index.json), and those files are hard-linked into this entry, so no weight is
 * decoded or stored twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WeightSource } from '../arch/transformer.ts';
import { EngineError } from '../errors.ts';
import { type CompiledForward, WEIGHT_INDEX_FILE } from '../model/forward-graph.ts';
import type { OpenedModel } from '../model/open-model.ts';
import type { WeightIndex } from '../model/weight-source.ts';
import { cacheKey, defaultCacheRoot, getOrCompile } from '../onnx/compile-cache.ts';
import { ExternalWeights } from '../onnx/external-weights.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TensorData } from '../onnx/model-proto.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { emitBackwardGraph, emitFrozenForwardGraph, type LinearModelTranscoderInfo } from './linear-model.ts';

export interface CompiledLinearModel {
  backwardPath: string;
  frozenForwardPath: string;
  cacheDir: string;
  cacheHit: boolean;
}

/** Serves initializers from the forward graph's external data, linked into `dir`. */
class SharedWeightSource implements WeightSource {
  private readonly linked = new Set<string>();
  private readonly created = new Map<string, string>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly index: WeightIndex,
    private readonly forwardDir: string,
    private readonly dir: string,
  ) {}

  private entry(name: string) {
    const e = this.index[name];
    if (!e) throw new EngineError('missing', `forward graph has no weight ${name}`, { tensor: name });
    return e;
  }

  private link(data: TensorData): TensorData {
    if (data.kind !== 'external') return data;
    if (!this.linked.has(data.location)) {
      const from = path.join(this.forwardDir, data.location);
      const to = path.join(this.dir, data.location);
      try {
        fs.linkSync(from, to);
      } catch {
        fs.copyFileSync(from, to);
      }
      this.linked.add(data.location);
    }
    return data;
  }

  tensor(name: string, shape: readonly number[]): string {
    const existing = this.created.get(name);
    if (existing) return existing;
    const e = this.entry(name);
    if (e.dims.join() !== shape.join()) {
      throw new EngineError('shape', `weight ${name} is [${e.dims}], expected [${shape}]`, { tensor: name });
    }
    const init = this.g.initializer(`w:${name}`, 'float32', e.dims, this.link(e.data));
    this.created.set(name, init);
    return init;
  }

  derived(name: string, shape: readonly number[]): string {
    return this.tensor(name, shape);
  }

  readFloat32(): Float32Array {
    throw new Error('SharedWeightSource serves precomputed weights only');
  }
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
    const index = JSON.parse(
      fs.readFileSync(path.join(forward.cacheDir, WEIGHT_INDEX_FILE), 'utf8'),
    ) as WeightIndex;
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
