/**
 * The closed-loop intervention graph: the real model, with every layer's transcoder
 * activations recomputed from the (possibly perturbed) residual stream and edited
 * (a' = a·mul + add, per position and feature), and the MLP output at the transcoder's write
 * hook shifted by the decoder of the change: Δ = (a' − a)·W_dec (a CLT feature's change is
 * written to every layer it writes to). With mul = 1 and add = 0 everywhere the graph is the
 * original model exactly (the error term is kept implicitly).
 *
 * Frozen attention (optional, same graph so the decoder weights are held once): with
 * `freeze_attention` true every layer's pattern is the fed `frozen_pattern_l` instead of the
 * one computed from the (perturbed) queries and keys; everything else is still recomputed.
 * With it false the fed pattern is ignored (feed a [1, 1, 1] placeholder).
 *
 * Inputs: token_embeddings [T, d] (the prompt's embedding rows); per layer iv_mul_l, iv_add_l
 * [T, d_t] and frozen_pattern_l [H, T, T]; freeze_attention bool []. Weights are graph inputs
 * (model/weight-feeder.ts). Outputs: unembed.hook_in [T, d] (the logits come from the logit
 * head), the edited
 * activations blocks.{l}.transcoder.hook_acts [T, d_t] and the patterns each layer used,
 * blocks.{l}.attn.hook_pattern [H, T, T].
 */
import { emitTransformerForward } from '../arch/transformer.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { emitTranscoderLayer, notBosColumn, transcoderHookNames } from '../model/transcoder-encoder.ts';
import type { WeightFeeder } from '../model/weight-feeder.ts';
import { FedWeightSource } from '../model/weight-source.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { TranscoderSet } from '../transcoders/types.ts';

export const interventionInputs = {
  mul: (l: number) => `iv_mul_${l}`,
  add: (l: number) => `iv_add_${l}`,
  frozenPattern: (l: number) => `frozen_pattern_${l}`,
  freezeAttention: 'freeze_attention',
};

export const patternOutput = (l: number) => `blocks.${l}.attn.hook_pattern`;

export function compileClosedLoopGraph(
  model: OpenedModel,
  set: TranscoderSet,
  feeder: WeightFeeder,
): Uint8Array {
  const g = new GraphBuilder('closed-loop-intervention');
  const source = new FedWeightSource(g, model.tensors, feeder, true);
  const L = set.nLayers;
  const d = set.dModel;
  const pending: (string | undefined)[] = new Array(L).fill(undefined);
  let notBos: string | undefined;
  const freeze = g.input(interventionInputs.freezeAttention, 'bool', []);
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
      const slots = set.kind === 'clt' ? L - l : 1;
      for (let j = 0; j < slots; j++) {
        const w = source.derived(`tc:${l}:W_dec:${j}`, [dT, d], () => {
          const rows = set.decoderRowsFloat32(
            l,
            Array.from({ length: dT }, (_, f) => f),
          );
          const slot = new Float32Array(dT * d);
          for (let f = 0; f < dT; f++)
            slot.set(rows.subarray((f * slots + j) * d, (f * slots + j + 1) * d), f * d);
          return slot;
        });
        const delta = g.linear(change, w, undefined, false);
        pending[l + j] = pending[l + j] ? g.add(pending[l + j]!, delta) : delta;
      }
      return pending[l] ? g.add(value, pending[l]!) : value;
    },
    (l, pattern) => {
      // Placeholder dims: with freeze_attention false a [1, 1, 1] tensor is fed and ignored.
      const fed = g.input(interventionInputs.frozenPattern(l), 'float32', [`fh_${l}`, `fq_${l}`, `fk_${l}`]);
      return g.where(freeze, fed, pattern);
    },
    { embedding: 'rows', head: 'none' },
  );
  g.output(hooks.get('unembed.hook_in')!, 'unembed.hook_in');
  for (let l = 0; l < L; l++) g.output(hooks.get(patternOutput(l))!, patternOutput(l));
  return g.serialize();
}
