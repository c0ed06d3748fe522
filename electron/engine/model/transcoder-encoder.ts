/**
 * A transcoder layer's encoder as graph ops: pre-activations `x·W_encᵀ + b_enc` at the read
 * hook and activations (JumpReLU / ReLU / TopK), with position 0 (BOS) zeroed as
 * circuit-tracer does. Decoders stay out of the forward graph: the engine reads decoder rows
 * of active features only (CLT decoders are huge).
 */
import type { WeightSource } from '../arch/transformer.ts';
import { EngineError } from '../errors.ts';
import type { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

const ONNX_FLOAT = 1;

export function transcoderHookNames(l: number) {
  return { pre: `blocks.${l}.transcoder.hook_pre`, acts: `blocks.${l}.transcoder.hook_acts` };
}

/** The name layer l's W_enc is fed under (its graph input: WEIGHT_INPUT_PREFIX + this). */
export function encoderWeightKey(l: number): string {
  return `tc:${l}:W_enc`;
}

/** [T, 1]: 1 at every position but 0 (BOS). */
export function notBosColumn(g: GraphBuilder, positions: string): string {
  return g.unsqueeze(g.cast(g.op('Greater', [positions, g.constInt64([0], [])]), ONNX_FLOAT), [1]);
}

export function emitTranscoderLayer(
  g: GraphBuilder,
  set: TranscoderSet,
  l: number,
  hooks: Map<string, string>,
  notBos: string,
  weights: WeightSource,
): { pre: string; acts: string } {
  const read = hooks.get(`blocks.${l}.${set.readHook}`);
  if (!read) {
    throw new EngineError(
      'unsupported',
      `transcoder read hook "${set.readHook}" is not produced by this model`,
      {
        file: set.configFile ?? set.dir,
        field: 'feature_input_hook',
      },
    );
  }
  const dT = set.dTranscoderPerLayer[l];
  const enc = set.encoderInfo(l);
  // Stored orientation is kept (Gemm's transB handles it): decoding is one pass, no transpose.
  const wShape = enc.encoderTransposed ? [set.dModel, dT] : [dT, set.dModel];
  const wEnc = weights.decoded(encoderWeightKey(l), wShape, (out) => set.encoderStoredFloat32(l, out));
  const bEnc = weights.derived(`tc:${l}:b_enc`, [dT], () => set.encoderBiasFloat32(l));
  const pre = g.linear(read, wEnc, bEnc, !enc.encoderTransposed);
  let acts: string;
  const act = set.activation;
  if (act.kind === 'jumprelu') {
    const threshold = set.thresholdFloat32(l);
    if (!threshold) {
      throw new EngineError('missing', 'JumpReLU transcoder layer has no threshold', {
        file: set.layerFiles(l)[0],
      });
    }
    const theta = weights.derived(`tc:${l}:threshold`, [dT], () => threshold);
    acts = g.mul(pre, g.cast(g.op('Greater', [pre, theta]), ONNX_FLOAT));
  } else if (act.kind === 'relu') {
    acts = g.op('Relu', [pre]);
  } else {
    const [values, indices] = g.opMulti('TopK', [pre, g.constInt64([act.k])], 2, {
      axis: { i: -1 },
      largest: { i: 1 },
      sorted: { i: 1 },
    });
    const zeros = g.op('ConstantOfShape', [g.op('Shape', [pre])], {
      value: {
        t: { name: 'zero', type: 'float32', dims: [1], data: { kind: 'inline', bytes: new Uint8Array(4) } },
      },
    });
    acts = g.op('Relu', [g.op('ScatterElements', [zeros, indices, values], { axis: { i: -1 } })]);
  }
  return { pre, acts: g.mul(acts, notBos) };
}

/**
 * The encoders of layers [from, to) (default: all), after those layers' forward; hooks
 * `blocks.{l}.transcoder.hook_pre/acts`.
 */
export function emitTranscoderEncoders(
  g: GraphBuilder,
  set: TranscoderSet,
  hooks: Map<string, string>,
  positions: string,
  weights: WeightSource,
  from = 0,
  to = set.nLayers,
): void {
  const notBos = notBosColumn(g, positions);
  for (let l = from; l < to; l++) {
    const { pre, acts } = emitTranscoderLayer(g, set, l, hooks, notBos, weights);
    const names = transcoderHookNames(l);
    hooks.set(names.pre, pre);
    hooks.set(names.acts, acts);
  }
}
