/**
 * Turns checkpoint tensors into graph inputs fed by a WeightFeeder (see weight-feeder.ts):
 * the graph names and shapes them, the feeder reads and decodes them from the checkpoint
 * when a session runs. Small derived constants (Gemma's 1 + w gains, thresholds, biases)
 * are inlined in the graph.
 */
import type { WeightSource } from '../arch/transformer.ts';
import type { TensorInfo, TensorStore } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import type { WeightFeeder } from './weight-feeder.ts';

/** Graph input name of a checkpoint tensor: the prefix + its name in the checkpoint. */
export const WEIGHT_INPUT_PREFIX = 'w:';

/** Derived constants up to this many values are inlined; larger ones are fed. */
const INLINE_MAX_VALUES = 1 << 16;

export class FedWeightSource implements WeightSource {
  private readonly created = new Map<string, string>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly store: TensorStore,
    private readonly feeder: WeightFeeder,
    /** Whether the feeder keeps this graph's weights once decoded (else per run). */
    private readonly resident: boolean,
  ) {}

  private checkShape(name: string, shape: readonly number[]): TensorInfo {
    const info = this.store.info(name);
    if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
      throw new EngineError(
        'shape',
        `tensor shape [${info.shape}] disagrees with config.json, which implies [${shape}]`,
        { file: info.sourceFile, tensor: name },
      );
    }
    return info;
  }

  private fed(
    name: string,
    shape: readonly number[],
    load: (out?: Float32Array) => Float32Array,
    tensor?: TensorInfo,
  ): string {
    const existing = this.created.get(name);
    if (existing) return existing;
    const input = this.g.input(`${WEIGHT_INPUT_PREFIX}${name}`, 'float32', shape);
    this.feeder.register({ input, dims: [...shape], load, resident: this.resident, tensor });
    this.created.set(name, input);
    return input;
  }

  tensor(name: string, shape: readonly number[]): string {
    const info = this.created.has(name) ? undefined : this.checkShape(name, shape);
    return this.fed(name, shape, (out) => this.store.readFloat32(name, out), info);
  }

  decoded(name: string, shape: readonly number[], decode: (out?: Float32Array) => Float32Array): string {
    return this.fed(name, shape, decode);
  }

  derived(name: string, shape: readonly number[], compute: () => Float32Array): string {
    const existing = this.created.get(name);
    if (existing) return existing;
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > INLINE_MAX_VALUES) return this.fed(name, shape, compute);
    const values = compute();
    const init = this.g.initializer(`${WEIGHT_INPUT_PREFIX}${name}`, 'float32', shape, {
      kind: 'inline',
      bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
    this.created.set(name, init);
    return init;
  }

  readFloat32(name: string, shape: readonly number[]): Float32Array {
    this.checkShape(name, shape);
    return this.store.readFloat32(name);
  }
}
