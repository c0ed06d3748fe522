/**
 * The closed-loop intervention graph: the real model, with every layer's transcoder
 * activations recomputed from the (possibly perturbed) residual stream and edited
 * (a' = a·mul + add, per position and feature), and the MLP output at the transcoder's write
 * hook shifted by the decoder of the change: Δ = (a' − a)·W_dec (a CLT feature's change is
 * written to every layer it writes to). With mul = 1 and add = 0 everywhere the graph is the
 * original model exactly (the error term is kept implicitly).
 *
 * Inputs: input_ids [T]; per layer iv_mul_l, iv_add_l [T, d_t]. Outputs: logits [T, V] and
 * the edited activations blocks.{l}.transcoder.hook_acts [T, d_t].
 */
import fs from 'node:fs';
import path from 'node:path';
import { emitTransformerForward } from '../arch/transformer.ts';
import type { CompiledForward } from '../model/forward-graph.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { readWeightIndex, SharedWeightSource } from '../model/shared-weight-source.ts';
import { emitTranscoderLayer, notBosColumn, transcoderHookNames } from '../model/transcoder-encoder.ts';
import { cacheKey, defaultCacheRoot, getOrCompile } from '../onnx/compile-cache.ts';
import { ExternalWeights } from '../onnx/external-weights.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

export const interventionInputs = {
  mul: (l: number) => `iv_mul_${l}`,
  add: (l: number) => `iv_add_${l}`,
};

export function compileClosedLoopGraph(
  model: OpenedModel,
  set: TranscoderSet,
  forward: CompiledForward,
  cacheRoot = defaultCacheRoot(),
): string {
  const key = cacheKey({
    kind: 'closed-loop',
    forward: path.basename(forward.cacheDir),
    transcoders: set.contentKey(),
  });
  const entry = getOrCompile(cacheRoot, key, (dir) => {
    const g = new GraphBuilder('closed-loop-intervention');
    const source = new SharedWeightSource(g, readWeightIndex(forward.cacheDir), forward.cacheDir, dir);
    const decoders = new ExternalWeights(dir, 'decoder-weights.bin');
    const L = set.nLayers;
    const d = set.dModel;
    const pending: (string | undefined)[] = new Array(L).fill(undefined);
    let notBos: string | undefined;
    try {
      const { hooks } = emitTransformerForward(
        g,
        model.config,
        model.weightNames,
        source,
        (l, point, value, ctx) => {
          if (point !== set.writeHook) return value;
          notBos ??= notBosColumn(g, ctx.positions);
          const dT = set.dTranscoderPerLayer[l];
          const { acts } = emitTranscoderLayer(g, set, l, ctx.hooks, notBos, source);
          const mul = g.input(interventionInputs.mul(l), 'float32', ['T', dT]);
          const add = g.input(interventionInputs.add(l), 'float32', ['T', dT]);
          const edited = g.add(g.mul(acts, mul), add);
          g.output(edited, transcoderHookNames(l).acts);
          const change = g.sub(edited, acts);
          // The whole decoder, as [d_t, d] per written layer (fine for the sets this runs on;
          // a sparse variant would gather only the edited features' rows).
          const all = Array.from({ length: dT }, (_, f) => f);
          const rows = set.decoderRowsFloat32(l, all);
          const slots = set.kind === 'clt' ? L - l : 1;
          for (let j = 0; j < slots; j++) {
            const slot = new Float32Array(dT * d);
            for (let f = 0; f < dT; f++)
              slot.set(rows.subarray((f * slots + j) * d, (f * slots + j + 1) * d), f * d);
            const w = g.initializer(`tc:${l}:W_dec:${j}`, 'float32', [dT, d], decoders.addFloat32(slot));
            const delta = g.linear(change, w, undefined, false);
            pending[l + j] = pending[l + j] ? g.add(pending[l + j]!, delta) : delta;
          }
          return pending[l] ? g.add(value, pending[l]!) : value;
        },
      );
      g.output(hooks.get('logits')!, 'logits');
    } finally {
      decoders.close();
    }
    fs.writeFileSync(path.join(dir, 'model.onnx'), g.serialize());
  });
  return entry.modelPath;
}
