/**
 * Builds the backward and frozen-forward graphs of a model + transcoder set, in memory. Their
 * weights are graph inputs served by the model's WeightFeeder (resident: the linear model
 * needs only the attention value/output projections with the norms around attention folded in,
 * derived once per model, and any W_skip, which every backward batch reuses; the frozen forward
 * shares the forward graph's own weights where it keeps them too).
 */
import type { OpenedModel } from '../model/open-model.ts';
import type { WeightFeeder } from '../model/weight-feeder.ts';
import { FedWeightSource } from '../model/weight-source.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import {
  type BackwardConstantSpec,
  type BackwardForm,
  CPU_BACKWARD_FORM,
  emitBackwardGraph,
  emitFrozenForwardGraph,
  foldsPostFeedForward,
  type LinearModelTranscoderInfo,
} from './linear-model.ts';
import { normGain } from './targets.ts';

function build(
  model: OpenedModel,
  set: TranscoderSet,
  feeder: WeightFeeder,
  name: string,
  emit: (g: GraphBuilder, source: FedWeightSource, tc: LinearModelTranscoderInfo) => void,
): Uint8Array {
  const g = new GraphBuilder(name);
  const source = new FedWeightSource(g, model.tensors, feeder, true);
  const d = set.dModel;
  const tc: LinearModelTranscoderInfo = {
    readHook: set.readHook,
    writeHook: set.writeHook,
    // W_skip is the one weight the model's checkpoint does not hold.
    skip: Array.from({ length: set.nLayers }, (_, l) => {
      const skip = set.kind === 'plt' ? set.layerTensors(l).W_skip : undefined;
      return skip ? source.decoded(`tc:${l}:W_skip`, [d, d], () => set.skipFloat32(l)!) : undefined;
    }),
  };
  emit(g, source, tc);
  return g.serialize();
}

/** The backward graph for batches reading at layer ≤ `top` (`L`: any target, logits included). */
export function compileBackward(
  model: OpenedModel,
  set: TranscoderSet,
  feeder: WeightFeeder,
  top = model.config.nLayers,
  form: BackwardForm = CPU_BACKWARD_FORM,
): Uint8Array {
  return build(model, set, feeder, `backward-top-${top}`, (g, source, tc) =>
    emitBackwardGraph(g, model.config, model.weightNames, source, tc, top, form),
  );
}

/** Per layer, whether the backward folds the post-feed-forward norm into its source vectors. */
export function foldedSourceLayers(model: OpenedModel, set: TranscoderSet): boolean[] {
  const tc = {
    readHook: set.readHook,
    writeHook: set.writeHook,
    skip: Array.from({ length: set.nLayers }, (_, l) =>
      set.kind === 'plt' && set.layerTensors(l).W_skip ? 'W_skip' : undefined,
    ),
  };
  return model.weightNames.layers.map((_, l) => foldsPostFeedForward(model.weightNames, tc, l));
}

/**
 * The spec of the backward's constants for graphs with the inputs `backwardInputs` (the full
 * graph's): the post-feed-forward norms' gains (Gemma's 1 + w) where they fold into the sources.
 */
export function backwardConstantSpec(
  model: OpenedModel,
  set: TranscoderSet,
  backwardInputs: readonly string[],
): BackwardConstantSpec {
  const folded = foldedSourceLayers(model, set);
  return {
    inputs: backwardInputs,
    postFeedForwardGains: model.weightNames.layers.map((lw, l) =>
      lw.lnPostFf && folded[l] ? normGain(model, lw.lnPostFf) : undefined,
    ),
  };
}

export function compileFrozenForward(
  model: OpenedModel,
  set: TranscoderSet,
  feeder: WeightFeeder,
): Uint8Array {
  return build(model, set, feeder, 'frozen-forward', (g, source, tc) =>
    emitFrozenForwardGraph(g, model.config, model.weightNames, source, tc),
  );
}
