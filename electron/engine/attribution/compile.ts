/**
 * Builds the backward and frozen-forward graphs of a model + transcoder set, in memory. Their
 * weights are graph inputs served by the model's WeightFeeder (resident: the linear model
 * needs only the attention value/output projections, the norms' gains and any W_skip, which
 * every backward batch reuses), shared with the forward graph where it keeps them too.
 */
import type { OpenedModel } from '../model/open-model.ts';
import type { WeightFeeder } from '../model/weight-feeder.ts';
import { FedWeightSource } from '../model/weight-source.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { emitBackwardGraph, emitFrozenForwardGraph, type LinearModelTranscoderInfo } from './linear-model.ts';

export interface CompiledLinearModel {
  backward: Uint8Array;
  frozenForward: Uint8Array;
}

export function compileLinearModel(
  model: OpenedModel,
  set: TranscoderSet,
  feeder: WeightFeeder,
): CompiledLinearModel {
  const build = (name: string, emit: typeof emitBackwardGraph) => {
    const g = new GraphBuilder(name);
    const source = new FedWeightSource(g, model.tensors, feeder, true);
    const d = set.dModel;
    const tc: LinearModelTranscoderInfo = {
      readHook: set.readHook,
      writeHook: set.writeHook,
      // W_skip is the one weight the model's checkpoint does not hold.
      skip: Array.from({ length: set.nLayers }, (_, l) => {
        const skip = set.kind === 'plt' ? set.layerTensors(l).W_skip : undefined;
        return skip ? source.fromInfo(`tc:${l}:W_skip`, [d, d], skip, () => set.skipFloat32(l)!) : undefined;
      }),
    };
    emit(g, model.config, model.weightNames, source, tc);
    return g.serialize();
  };
  return {
    backward: build('backward', emitBackwardGraph),
    frozenForward: build('frozen-forward', emitFrozenForwardGraph),
  };
}
