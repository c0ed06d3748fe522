/**
 * A small typed builder for ONNX graphs. Values are plain string names; every op helper
 * returns the name of its (fresh) output. Initializers are either inline (small constants)
 * or external data (TensorData kind "external"); the engine feeds its weights as graph inputs.
 */
import {
  type AttributeValue,
  type Dim,
  type ElemType,
  encodeModel,
  type GraphSpec,
  type NodeSpec,
  type TensorData,
  type TensorProtoSpec,
  type ValueInfoSpec,
} from './model-proto.ts';

export const OPSET = 18;
export const IR_VERSION = 8;

type Attrs = Record<string, AttributeValue>;

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly initializers: TensorProtoSpec[] = [];
  private readonly inputs: ValueInfoSpec[] = [];
  private readonly outputs: ValueInfoSpec[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A unique value name with a readable prefix. */
  fresh(prefix: string): string {
    return this.claim(this.unusedName(prefix));
  }

  private unusedName(prefix: string): string {
    let n = `${prefix}_${this.counter++}`;
    while (this.used.has(n)) n = `${prefix}_${this.counter++}`;
    return n;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX value name used twice: ${name}`);
    this.used.add(name);
    return name;
  }

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push({ name: this.claim(name), type, dims });
    return name;
  }

  /** Exposes `value` as graph output `name` (through Identity when the names differ). */
  output(value: string, name: string, type: ElemType = 'float32', dims?: readonly Dim[]): string {
    if (value !== name) this.op('Identity', [value], {}, name);
    this.outputs.push({ name, type, dims });
    return name;
  }

  hasOutput(name: string): boolean {
    return this.outputs.some((o) => o.name === name);
  }

  initializer(name: string, type: ElemType, dims: readonly number[], data: TensorData): string {
    this.initializers.push({ name: this.claim(name), type, dims, data });
    return name;
  }

  constFloat(values: ArrayLike<number>, dims: readonly number[] = [values.length], prefix = 'c'): string {
    const bytes = new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer);
    return this.initializer(this.unusedName(prefix), 'float32', dims, { kind: 'inline', bytes });
  }

  scalar(value: number): string {
    return this.constFloat([value], []);
  }

  constInt64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const bytes = new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    return this.initializer(this.unusedName('i'), 'int64', dims, { kind: 'inline', bytes });
  }

  op(opType: string, inputs: readonly string[], attributes: Attrs = {}, outName?: string): string {
    const out = outName ? this.claim(outName) : this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, outputs: [out], name: `n_${out}`, attributes });
    return out;
  }

  opMulti(opType: string, inputs: readonly string[], nOutputs: number, attributes: Attrs = {}): string[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, inputs, outputs: outs, name: `n_${outs[0]}`, attributes });
    return outs;
  }

  // ---- sugar for the ops the architectures use ----
  add(a: string, b: string, name?: string) {
    return this.op('Add', [a, b], {}, name);
  }
  sub(a: string, b: string, name?: string) {
    return this.op('Sub', [a, b], {}, name);
  }
  mul(a: string, b: string, name?: string) {
    return this.op('Mul', [a, b], {}, name);
  }
  div(a: string, b: string, name?: string) {
    return this.op('Div', [a, b], {}, name);
  }
  matmul(a: string, b: string, name?: string) {
    return this.op('MatMul', [a, b], {}, name);
  }
  /** y = x·Wᵀ (+ b) for a [out, in] weight, or x·W (+ b) with transB false (GPT-2 Conv1D). */
  linear(x: string, w: string, b?: string, transB = true, name?: string) {
    return this.op('Gemm', b ? [x, w, b] : [x, w], { transB: { i: transB ? 1 : 0 } }, name);
  }
  reshape(x: string, shape: readonly number[], name?: string) {
    return this.op('Reshape', [x, this.constInt64(shape)], {}, name);
  }
  transpose(x: string, perm: readonly number[], name?: string) {
    return this.op('Transpose', [x], { perm: { ints: perm } }, name);
  }
  reduceMean(x: string, axes: readonly number[], keepdims = true, name?: string) {
    return this.op('ReduceMean', [x, this.constInt64(axes)], { keepdims: { i: keepdims ? 1 : 0 } }, name);
  }
  softmax(x: string, axis = -1, name?: string) {
    return this.op('Softmax', [x], { axis: { i: axis } }, name);
  }
  tanh(x: string) {
    return this.op('Tanh', [x]);
  }
  sqrt(x: string) {
    return this.op('Sqrt', [x]);
  }
  reciprocal(x: string, name?: string) {
    return this.op('Reciprocal', [x], {}, name);
  }
  concat(xs: readonly string[], axis: number, name?: string) {
    return this.op('Concat', xs, { axis: { i: axis } }, name);
  }
  slice(x: string, starts: readonly number[], ends: readonly number[], axes: readonly number[]) {
    return this.op('Slice', [x, this.constInt64(starts), this.constInt64(ends), this.constInt64(axes)]);
  }
  gather(data: string, indices: string, axis = 0, name?: string) {
    return this.op('Gather', [data, indices], { axis: { i: axis } }, name);
  }
  unsqueeze(x: string, axes: readonly number[]) {
    return this.op('Unsqueeze', [x, this.constInt64(axes)]);
  }
  cast(x: string, to: number) {
    return this.op('Cast', [x], { to: { i: to } });
  }
  where(cond: string, a: string, b: string, name?: string) {
    return this.op('Where', [cond, a, b], {}, name);
  }
  split(x: string, sizes: readonly number[], axis: number): string[] {
    return this.opMulti('Split', [x, this.constInt64(sizes)], sizes.length, { axis: { i: axis } });
  }

  build(): GraphSpec {
    return {
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
    };
  }

  serialize(producer = 'circuit-workbench'): Uint8Array {
    return encodeModel(this.build(), { opset: OPSET, irVersion: IR_VERSION, producer });
  }
}
