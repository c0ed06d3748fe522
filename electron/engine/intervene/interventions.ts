/**
 * Feature interventions: set, scale or ablate features (per layer, feature index, position)
 * and see how the next-token predictions move.
 *
 *  - open loop: the frozen replacement model (attention patterns, norm scales and every other
 *    MLP output held at the prompt's values) — direct effects, the ones the graph's edges
 *    describe: ablating a single feature moves each logit target by −(its edge);
 *  - closed loop: the model recomputes everything downstream, transcoder activations
 *    included (closed-loop-graph.ts); optionally a greedy continuation with the edit applied
 *    at the prompt positions.
 */
import { Attributor, type AttributorOptions, type PreparedPrompt } from '../attribution/attribute.ts';
import { EngineError } from '../errors.ts';
import { topNextTokens } from '../model/next-token.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { transcoderHookNames } from '../model/transcoder-encoder.ts';
import { createSession, ort } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { compileClosedLoopGraph, interventionInputs } from './closed-loop-graph.ts';

export type InterventionMode = 'set' | 'scale' | 'ablate';

export interface FeatureIntervention {
  layer: number;
  feature: number;
  position: number;
  mode: InterventionMode;
  /** The value (set) or factor (scale); unused for ablate. */
  value?: number;
}

export interface Prediction {
  tokenId: number;
  logit: number;
  prob: number;
}

export interface PredictionChange {
  tokenId: number;
  probBefore: number;
  probAfter: number;
  logitBefore: number;
  logitAfter: number;
}

export interface ActivationChange {
  layer: number;
  position: number;
  feature: number;
  before: number;
  after: number;
}

export interface InterventionResult {
  loop: 'open' | 'closed';
  before: Prediction[];
  after: Prediction[];
  /** Every token in either top list, before and after. */
  changes: PredictionChange[];
  /** Closed loop: the features whose activation changed most (the edited ones included). */
  activationChanges: ActivationChange[];
  /** Closed loop with `generate`: the greedy continuation's token ids. */
  generated: number[];
}

export interface InterventionOptions {
  top?: number;
  /** Closed loop only: greedy tokens to generate with the edit applied at the prompt positions. */
  generate?: number;
  /** How many activation changes to report (largest first). */
  maxActivationChanges?: number;
}

function describe(iv: FeatureIntervention): string {
  return `${iv.mode} ${iv.layer}:${iv.feature}:${iv.position}`;
}

export function validateInterventions(
  ivs: readonly FeatureIntervention[],
  set: TranscoderSet,
  T: number,
): void {
  if (!ivs.length) throw new EngineError('argument', 'no intervention given', { field: 'interventions' });
  for (const iv of ivs) {
    const bad = (msg: string) => {
      throw new EngineError('argument', `${describe(iv)}: ${msg}`, { field: 'interventions' });
    };
    if (!Number.isInteger(iv.layer) || iv.layer < 0 || iv.layer >= set.nLayers)
      bad(`layer must be in [0, ${set.nLayers})`);
    const dT = set.dTranscoderPerLayer[iv.layer];
    if (!Number.isInteger(iv.feature) || iv.feature < 0 || iv.feature >= dT)
      bad(`feature must be in [0, ${dT})`);
    if (!Number.isInteger(iv.position) || iv.position < 1 || iv.position >= T) {
      bad(`position must be in [1, ${T}) (position 0 is BOS, where features are zeroed)`);
    }
    if (iv.mode !== 'ablate' && !Number.isFinite(iv.value)) bad('needs a finite value');
  }
}

function compare(
  before: Prediction[],
  after: Prediction[],
  logitsBefore: Float32Array,
  logitsAfter: Float32Array,
) {
  const probs = (logits: Float32Array) => {
    let max = Number.NEGATIVE_INFINITY;
    for (const v of logits) if (v > max) max = v;
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - max);
    return (id: number) => Math.exp(logits[id] - max) / sum;
  };
  const pb = probs(logitsBefore);
  const pa = probs(logitsAfter);
  const ids = [...new Set([...before, ...after].map((p) => p.tokenId))];
  return ids
    .map((id) => ({
      tokenId: id,
      probBefore: pb(id),
      probAfter: pa(id),
      logitBefore: logitsBefore[id],
      logitAfter: logitsAfter[id],
    }))
    .sort((a, b) => b.probAfter - a.probAfter);
}

export class Intervener {
  private constructor(
    readonly model: OpenedModel,
    readonly set: TranscoderSet,
    readonly attributor: Attributor,
    private readonly closedLoop: ort.InferenceSession,
  ) {}

  static async create(
    model: OpenedModel,
    set: TranscoderSet,
    opts: AttributorOptions = {},
  ): Promise<Intervener> {
    const attributor = await Attributor.create(model, set, opts);
    const path = compileClosedLoopGraph(model, set, attributor.forward.compiled, opts.cacheRoot);
    const { session } = await createSession(path, { ...opts, provider: attributor.provider });
    return new Intervener(model, set, attributor, session);
  }

  async openLoop(
    tokenIds: number[],
    interventions: readonly FeatureIntervention[],
    opts: InterventionOptions = {},
    prepared?: PreparedPrompt,
  ): Promise<InterventionResult> {
    validateInterventions(interventions, this.set, tokenIds.length);
    const p = prepared ?? (await this.attributor.prepare(tokenIds));
    const { space } = p;
    const scale = new Map<number, number>();
    const extra: { layer: number; position: number; vector: Float32Array }[] = [];
    const d = this.set.dModel;
    for (const iv of interventions) {
      let active = -1;
      for (let i = 0; i < space.nActive; i++) {
        if (
          space.featureLayer[i] === iv.layer &&
          space.featurePosition[i] === iv.position &&
          space.featureIndex[i] === iv.feature
        ) {
          active = i;
          break;
        }
      }
      if (active >= 0) {
        const a = space.featureActivation[active];
        scale.set(active, iv.mode === 'ablate' ? 0 : iv.mode === 'scale' ? iv.value! : iv.value! / a);
      } else if (iv.mode === 'set' && iv.value !== 0) {
        // An inactive feature switched on: its decoder rows, scaled, at every layer it writes.
        const rows = this.set.decoderRowsFloat32(iv.layer, [iv.feature]);
        const slots = this.set.kind === 'clt' ? this.set.nLayers - iv.layer : 1;
        for (let j = 0; j < slots; j++) {
          extra.push({
            layer: iv.layer + j,
            position: iv.position,
            vector: rows.slice(j * d, (j + 1) * d).map((v) => v * iv.value!),
          });
        }
      }
    }
    const base = await p.runner.frozenForward(() => 1);
    const edited = await p.runner.frozenForward((c) => scale.get(c) ?? 1, extra);
    const top = opts.top ?? 10;
    const V = base.logitsLast.length;
    const before = topNextTokens(base.logitsLast, 1, V, top);
    const after = topNextTokens(edited.logitsLast, 1, V, top);
    return {
      loop: 'open',
      before,
      after,
      changes: compare(before, after, base.logitsLast, edited.logitsLast),
      activationChanges: [],
      generated: [],
    };
  }

  private async runClosed(
    tokenIds: readonly number[],
    edits: readonly FeatureIntervention[],
    promptLength: number,
  ) {
    const T = tokenIds.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokenIds.map(BigInt)), [T]),
    };
    for (let l = 0; l < this.set.nLayers; l++) {
      const dT = this.set.dTranscoderPerLayer[l];
      const mul = new Float32Array(T * dT).fill(1);
      const add = new Float32Array(T * dT);
      for (const iv of edits) {
        if (iv.layer !== l || iv.position >= promptLength) continue;
        const k = iv.position * dT + iv.feature;
        mul[k] = iv.mode === 'scale' ? iv.value! : 0;
        add[k] = iv.mode === 'set' ? iv.value! : 0;
      }
      feeds[interventionInputs.mul(l)] = new ort.Tensor('float32', mul, [T, dT]);
      feeds[interventionInputs.add(l)] = new ort.Tensor('float32', add, [T, dT]);
    }
    const fetch = [
      'logits',
      ...Array.from({ length: this.set.nLayers }, (_, l) => transcoderHookNames(l).acts),
    ];
    const out = await this.closedLoop.run(feeds, fetch);
    const logits = out.logits.data as Float32Array;
    const V = out.logits.dims[1];
    return {
      last: logits.slice((T - 1) * V, T * V),
      acts: Array.from(
        { length: this.set.nLayers },
        (_, l) => out[transcoderHookNames(l).acts].data as Float32Array,
      ),
    };
  }

  async closedLoopIntervention(
    tokenIds: number[],
    interventions: readonly FeatureIntervention[],
    opts: InterventionOptions = {},
  ): Promise<InterventionResult> {
    validateInterventions(interventions, this.set, tokenIds.length);
    this.attributor.forward.validateTokenIds(tokenIds);
    const T = tokenIds.length;
    const base = await this.runClosed(tokenIds, [], T);
    const edited = await this.runClosed(tokenIds, interventions, T);
    const top = opts.top ?? 10;
    const V = base.last.length;
    const before = topNextTokens(base.last, 1, V, top);
    const after = topNextTokens(edited.last, 1, V, top);
    const activationChanges: ActivationChange[] = [];
    for (let l = 0; l < this.set.nLayers; l++) {
      const dT = this.set.dTranscoderPerLayer[l];
      const a = base.acts[l];
      const b = edited.acts[l];
      for (let i = 0; i < a.length; i++) {
        if (Math.abs(a[i] - b[i]) > 1e-6) {
          activationChanges.push({
            layer: l,
            position: Math.floor(i / dT),
            feature: i % dT,
            before: a[i],
            after: b[i],
          });
        }
      }
    }
    activationChanges.sort((x, y) => Math.abs(y.after - y.before) - Math.abs(x.after - x.before));
    const generated: number[] = [];
    if (opts.generate) {
      const seq = [...tokenIds];
      let last = edited.last;
      for (let i = 0; i < opts.generate; i++) {
        let best = 0;
        for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
        generated.push(best);
        seq.push(best);
        if (i + 1 < opts.generate) last = (await this.runClosed(seq, interventions, T)).last;
      }
    }
    return {
      loop: 'closed',
      before,
      after,
      changes: compare(before, after, base.last, edited.last),
      activationChanges: activationChanges.slice(0, opts.maxActivationChanges ?? 50),
      generated,
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.attributor.close(), this.closedLoop.release()]);
  }
}
