/**
 * A WeightSource over a compiled forward graph's weights: its cache entry lists where every
 * weight's bytes are (weights-index.json); those files are hard-linked into the new graph's
 * folder, so later graphs (backward, frozen forward, interventions) store no weight twice.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { WeightSource } from '../arch/transformer.ts';
import { EngineError } from '../errors.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TensorData } from '../onnx/model-proto.ts';
import { WEIGHT_INDEX_FILE } from './forward-graph.ts';
import type { WeightIndex } from './weight-source.ts';

export function readWeightIndex(forwardDir: string): WeightIndex {
  return JSON.parse(fs.readFileSync(path.join(forwardDir, WEIGHT_INDEX_FILE), 'utf8')) as WeightIndex;
}

/** Serves initializers from the forward graph's external data, linked into `dir`. */
export class SharedWeightSource implements WeightSource {
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

  fromInfo(name: string, shape: readonly number[]): string {
    return this.tensor(name, shape);
  }

  readFloat32(): Float32Array {
    throw new Error('SharedWeightSource serves precomputed weights only');
  }
}
