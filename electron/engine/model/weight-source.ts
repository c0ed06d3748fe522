/**
 * Turns checkpoint tensors into ONNX initializers with external data. Float32 tensors that
 * sit in a file are referenced in place (hard link, no copy); other dtypes are decoded to
 * float32 one tensor at a time and appended to the graph's weights file, so compiling never
 * holds more than one decoded tensor in memory.
 */
import type { WeightSource } from '../arch/transformer.ts';
import type { TensorInfo, TensorStore } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import type { ExternalWeights } from '../onnx/external-weights.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TensorData } from '../onnx/model-proto.ts';

export function externalDataFor(
  info: TensorInfo,
  weights: ExternalWeights,
  decode: () => Float32Array,
): TensorData {
  if (info.dtype === 'F32' && info.location.kind === 'file') {
    const ref = weights.reference(info.location.file, info.location.byteOffset, info.byteLength);
    if (ref) return ref;
  }
  return weights.addFloat32(decode());
}

/** Where each initializer's bytes went, so later graphs can share the same files. */
export type WeightIndex = Record<string, { dims: number[]; data: TensorData }>;

export class CheckpointWeightSource implements WeightSource {
  private readonly initialized = new Map<string, string>();
  readonly index: WeightIndex = {};

  constructor(
    private readonly g: GraphBuilder,
    private readonly store: TensorStore,
    private readonly weights: ExternalWeights,
    private readonly prefix = 'w:',
  ) {}

  private checkShape(name: string, shape: readonly number[]): TensorInfo {
    const info = this.store.info(name);
    if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i])) {
      throw new EngineError(
        'shape',
        `tensor shape [${info.shape}] disagrees with config.json, which implies [${shape}]`,
        {
          file: info.sourceFile,
          tensor: name,
        },
      );
    }
    return info;
  }

  tensor(name: string, shape: readonly number[]): string {
    const existing = this.initialized.get(name);
    if (existing) return existing;
    const info = this.checkShape(name, shape);
    const data = externalDataFor(info, this.weights, () => this.store.readFloat32(name));
    const init = this.g.initializer(`${this.prefix}${name}`, 'float32', shape, data);
    this.initialized.set(name, init);
    this.index[name] = { dims: [...shape], data };
    return init;
  }

  fromInfo(name: string, shape: readonly number[], info: TensorInfo, decode: () => Float32Array): string {
    const existing = this.initialized.get(name);
    if (existing) return existing;
    const data = externalDataFor(info, this.weights, decode);
    const init = this.g.initializer(`${this.prefix}${name}`, 'float32', shape, data);
    this.initialized.set(name, init);
    this.index[name] = { dims: [...shape], data };
    return init;
  }

  derived(name: string, shape: readonly number[], compute: () => Float32Array): string {
    const existing = this.initialized.get(name);
    if (existing) return existing;
    const data = this.weights.addFloat32(compute());
    const init = this.g.initializer(`${this.prefix}${name}`, 'float32', shape, data);
    this.initialized.set(name, init);
    this.index[name] = { dims: [...shape], data };
    return init;
  }

  readFloat32(name: string, shape: readonly number[]): Float32Array {
    this.checkShape(name, shape);
    return this.store.readFloat32(name);
  }
}
