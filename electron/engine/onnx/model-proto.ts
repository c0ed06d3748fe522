/**
 * ONNX ModelProto serialization (field numbers from onnx/onnx.proto). Only the subset the
 * engine emits: dense tensors (inline raw_data or external data), nodes with typed
 * attributes, value infos with static or symbolic dims.
 */
import { ProtoWriter } from './protobuf.ts';

export type ElemType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'float64';

export const ONNX_DATA_TYPE: Record<ElemType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export const ELEM_BYTES: Record<ElemType, number> = {
  float32: 4,
  uint8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  bfloat16: 2,
};

export type TensorData =
  | { kind: 'inline'; bytes: Uint8Array }
  /** `location` is relative to the .onnx file's folder (ONNX Runtime refuses anything outside it). */
  | { kind: 'external'; location: string; offset: number; length: number };

export interface TensorProtoSpec {
  name: string;
  type: ElemType;
  dims: readonly number[];
  data: TensorData;
}

export type Dim = number | string;

export interface ValueInfoSpec {
  name: string;
  type: ElemType;
  dims?: readonly Dim[];
}

export type AttributeValue =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { t: TensorProtoSpec };

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorProtoSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
}

export function encodeTensor(t: TensorProtoSpec): ProtoWriter {
  const w = new ProtoWriter();
  w.packedInts(1, t.dims);
  w.int(2, ONNX_DATA_TYPE[t.type]);
  w.string(8, t.name);
  if (t.data.kind === 'inline') {
    w.bytes(9, t.data.bytes);
  } else {
    const entry = (key: string, value: string) => new ProtoWriter().string(1, key).string(2, value);
    w.message(13, entry('location', t.data.location));
    w.message(13, entry('offset', String(t.data.offset)));
    w.message(13, entry('length', String(t.data.length)));
    w.int(14, 1); // data_location = EXTERNAL
  }
  return w;
}

function encodeAttribute(name: string, value: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if ('i' in value) w.int(3, value.i).int(20, 2);
  else if ('f' in value) w.float(2, value.f).int(20, 1);
  else if ('s' in value) w.string(4, value.s).int(20, 3);
  else if ('ints' in value) w.packedInts(8, value.ints).int(20, 7);
  else if ('floats' in value) w.packedFloats(7, value.floats).int(20, 6);
  else w.message(5, encodeTensor(value.t)).int(20, 4);
  return w;
}

function encodeNode(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: ValueInfoSpec): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_DATA_TYPE[v.type]);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      const dim = new ProtoWriter();
      if (typeof d === 'number') dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

export function encodeModel(
  graph: GraphSpec,
  opts: { opset: number; irVersion: number; producer: string },
): Uint8Array {
  const g = new ProtoWriter();
  for (const n of graph.nodes) g.message(1, encodeNode(n));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, encodeTensor(t));
  for (const i of graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of graph.outputs) g.message(12, encodeValueInfo(o));
  const m = new ProtoWriter();
  m.int(1, opts.irVersion);
  m.string(2, opts.producer);
  m.message(7, g);
  m.message(8, new ProtoWriter().string(1, '').int(2, opts.opset));
  return m.finish();
}
