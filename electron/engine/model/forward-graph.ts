/**
 * Builds the forward graph of a model, optionally with a transcoder set's encoders, as one or
 * more layer segments. The graphs hold no weights (they are graph inputs, fed by a
 * WeightFeeder), so they are built in memory at open, in milliseconds, and never cached.
 *
 * Memory model: when the model's float32 weights fit the resident budget the forward is one
 * segment with every weight kept decoded; otherwise it is one segment per layer and each
 * layer's weights are read from the checkpoint (stored dtype) and decoded for that layer's
 * run only. The embedding is never fed whole (the prompt's rows are read), and the
 * unembedding runs outside the graph (logit-head.ts).
 */
import os from 'node:os';
import { emitTransformerForward } from '../arch/transformer.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import type { OpenedModel } from './open-model.ts';
import { emitTranscoderEncoders } from './transcoder-encoder.ts';
import { float32Bytes, type WeightFeeder } from './weight-feeder.ts';
import { FedWeightSource } from './weight-source.ts';

/** Hooks the forward pass computes outside the segments, through the logit head. */
export const HEAD_HOOKS = ['logits', 'logits_pre_softcap', 'unembed.mean_row'] as const;

export interface ForwardSegment {
  /** Layers [from, to). */
  from: number;
  to: number;
  graph: Uint8Array;
  /** Hooks this segment exposes. */
  outputs: string[];
}

export interface CompiledForward {
  segments: ForwardSegment[];
  /** Every hook the forward pass can produce. */
  outputs: string[];
  /** True when weights are streamed per layer (the model exceeds the resident budget). */
  streamed: boolean;
  /** float32 bytes of the weights the layer graphs use (embedding and unembedding excluded). */
  layerWeightBytes: number;
  /**
   * True when the whole model fits the resident budget, unembedding included: then the one
   * segment is the complete model (input_ids in, logits out, as a small model runs fastest);
   * else the prompt's embedding rows go in and the logits come from the logit head.
   */
  headInGraph: boolean;
  compileMs: number;
}

export interface CompileOptions {
  transcoders?: TranscoderSet;
  /** Decoded float32 weights kept in memory at most (default: defaultResidentWeightBytes()). */
  residentWeightBytes?: number;
  /** The embedding goes into the complete graph only if it is at most this big (a GPU's largest buffer). */
  maxHeadBytes?: number;
}

/**
 * The default budget of decoded weights kept resident: `CIRCUIT_RESIDENT_WEIGHTS_MB`, else an
 * eighth of the machine's memory (3 GB on a 24 GB machine: gemma-2-2b's 12 GB of float32 layer
 * weights and encoders stream, models up to ~0.7 B parameters stay resident). Resident weights
 * save decoding on repeated forwards (dashboards, a server's later traces); a single trace is
 * no slower streamed, since first touches of fresh memory cost about as much as decoding.
 */
export function defaultResidentWeightBytes(): number {
  const env = Number(process.env.CIRCUIT_RESIDENT_WEIGHTS_MB);
  if (Number.isFinite(env) && env >= 0 && process.env.CIRCUIT_RESIDENT_WEIGHTS_MB !== '') {
    return env * 1024 * 1024;
  }
  return os.totalmem() / 8;
}

/** float32 bytes of the weights that layer graphs read (everything but embedding and unembedding). */
export function layerWeightBytes(model: OpenedModel, set?: TranscoderSet): number {
  const skip = new Set([model.weightNames.embed, model.weightNames.lmHead]);
  let total = 0;
  for (const [name, shape] of model.expectedShapes) {
    if (!skip.has(name)) total += float32Bytes(shape);
  }
  if (set)
    for (let l = 0; l < set.nLayers; l++) total += float32Bytes([set.dTranscoderPerLayer[l], set.dModel]);
  return total;
}

export function compileForward(
  model: OpenedModel,
  feeder: WeightFeeder,
  opts: CompileOptions = {},
): CompiledForward {
  const started = performance.now();
  const L = model.config.nLayers;
  const bytes = layerWeightBytes(model, opts.transcoders);
  const budget = opts.residentWeightBytes ?? defaultResidentWeightBytes();
  const streamed = bytes > budget;
  const names = model.weightNames;
  const vocabBytes = float32Bytes(model.expectedShapes.get(names.lmHead ?? names.embed) ?? []);
  const headInGraph =
    !streamed &&
    bytes + vocabBytes * (names.lmHead ? 2 : 1) <= budget &&
    vocabBytes <= (opts.maxHeadBytes ?? Number.POSITIVE_INFINITY);
  const bounds = streamed ? Array.from({ length: L }, (_, l) => [l, l + 1]) : [[0, L]];
  const segments = bounds.map(([from, to]) => {
    const g = new GraphBuilder(`${model.config.modelType}-forward-${from}-${to}`);
    const source = new FedWeightSource(g, model.tensors, feeder, !streamed);
    const { hooks, positions } = emitTransformerForward(
      g,
      model.config,
      model.weightNames,
      source,
      undefined,
      undefined,
      headInGraph ? {} : { from, to, embedding: 'rows', head: 'none' },
    );
    if (opts.transcoders) emitTranscoderEncoders(g, opts.transcoders, hooks, positions, source, from, to);
    for (const [name, value] of hooks) g.output(value, name);
    return { from, to, graph: g.serialize(), outputs: [...hooks.keys()] };
  });
  return {
    segments,
    outputs: [...new Set([...segments.flatMap((s) => s.outputs), ...HEAD_HOOKS])],
    streamed,
    headInGraph,
    layerWeightBytes: bytes,
    compileMs: performance.now() - started,
  };
}
