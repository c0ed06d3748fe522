/**
 * Feature interventions: set, scale or ablate features (per layer, feature index, position)
 * and see how the next-token predictions move.
 *
 *  - open loop: the frozen replacement model (attention patterns, norm scales and every other
 *    MLP output held at the prompt's values) — direct effects, the ones the graph's edges
 *    describe: ablating a single feature moves each logit target by −(its edge);
 *  - closed loop: the model recomputes everything downstream, transcoder activations
 *    included (closed-loop-graph.ts); optionally a greedy continuation with the edit applied
 *    at the prompt positions; with `freezeAttention`, every attention pattern is held at the
 *    original prompt's values while norms, MLPs and transcoders are recomputed.
 *
 * Both report each tracked token's demeaned pre-softcap logit (what a logit target of the
 * graph measures) before and after (`targetLogitChanges`).
 */
import { forwardInputs } from '../arch/transformer.ts';
import { Attributor, type AttributorOptions, type PreparedPrompt } from '../attribution/attribute.ts';
import { EngineError } from '../errors.ts';
import { topNextTokens } from '../model/next-token.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { transcoderHookNames } from '../model/transcoder-encoder.ts';
import { createSession, ort, releaseSession, runSession } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { compileClosedLoopGraph, interventionInputs, patternOutput } from './closed-loop-graph.ts';
import type { FeatureEdit } from './spec.ts';

/** One feature edit (spec.ts): set, scale, or ablate a feature at a position. */
export type FeatureIntervention = FeatureEdit;

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

/** A token's demeaned pre-softcap logit, (u_k − mean_v u_v)·h: what the graph's logit targets measure. */
export interface TargetLogitChange {
  tokenId: number;
  before: number;
  after: number;
  /**
   * The change. Open loop: the frozen map applied to the edit alone (it is affine), so it is
   * precise relative to the change itself, not to the logits; it equals Σ (factor − 1)·edge
   * over the edited sources (an ablation: −edge). Closed loop: after − before.
   */
  delta: number;
}

export interface InterventionProgress {
  /** open loop: 'prepare', 'baseline', 'intervene'; closed loop: 'baseline', 'intervene', 'generate'. */
  phase: string;
  done: number;
  total: number;
}

export interface InterventionResult {
  loop: 'open' | 'closed';
  before: Prediction[];
  after: Prediction[];
  /** Every token in either top list (and any of `trackTokens`), before and after. */
  changes: PredictionChange[];
  /**
   * The features whose activation changed, largest change first: closed loop, every one (the
   * edited ones included, bounded by `maxActivationChanges`); open loop, the edited ones alone.
   */
  activationChanges: ActivationChange[];
  /** Closed loop with `generate`: the greedy continuation's token ids. */
  generated: number[];
  /**
   * Open loop: the active features whose input (pre-activation) the edits change directly,
   * largest change first (bounded by `maxActivationChanges`), the edited ones excluded. Their
   * activations stay frozen; the change is Σ (factor − 1)·edge over the edited sources, what
   * the graph's edges into them predict. Empty for the closed loop.
   */
  inputChanges?: ActivationChange[];
  /** The tracked tokens (`trackTokens`, default those of `changes`), in that order. */
  targetLogitChanges?: TargetLogitChange[];
}

export interface InterventionOptions {
  top?: number;
  /** Closed loop only: greedy tokens to generate with the edit applied at the prompt positions. */
  generate?: number;
  /** How many activation changes to report (largest first). */
  maxActivationChanges?: number;
  /**
   * Closed loop only: hold every attention pattern at the original prompt's values (queries
   * and keys no longer see the edit; values, norms, MLPs and transcoders still do). Not with
   * `generate`: the continuation's positions have no original pattern.
   */
  freezeAttention?: boolean;
  /** Tokens whose demeaned pre-softcap logit change `targetLogitChanges` reports (default: those of `changes`). */
  trackTokens?: readonly number[];
  /** Checked between session runs; aborting throws EngineError('cancelled'). */
  signal?: AbortSignal;
  onProgress?: (p: InterventionProgress) => void;
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
  extra: readonly number[] = [],
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
  const ids = [...new Set([...[...before, ...after].map((p) => p.tokenId), ...extra])];
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

/** Demeaned logit of token id: logits[id] − mean(logits), the mean in float64. */
function demeaned(logits: ArrayLike<number>): (id: number) => number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += logits[i];
  const mean = sum / logits.length;
  return (id) => logits[id] - mean;
}

function validateTrackTokens(opts: InterventionOptions, V: number): void {
  for (const id of opts.trackTokens ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new EngineError('argument', `trackTokens: token id ${id} is not in [0, ${V})`, {
        field: 'trackTokens',
      });
  }
}

function trackedTokens(opts: InterventionOptions, changes: PredictionChange[]): number[] {
  return opts.trackTokens ? [...opts.trackTokens] : changes.map((c) => c.tokenId);
}

function cancelCheck(signal: AbortSignal | undefined): () => void {
  return () => {
    if (signal?.aborted) throw new EngineError('cancelled', 'the intervention was cancelled');
  };
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
    try {
      const graph = compileClosedLoopGraph(model, set, attributor.forward.feeder);
      const { session } = await createSession(graph, { ...opts, provider: attributor.provider });
      return new Intervener(model, set, attributor, session);
    } catch (e) {
      await attributor.close();
      throw e;
    }
  }

  async openLoop(
    tokenIds: number[],
    interventions: readonly FeatureIntervention[],
    opts: InterventionOptions = {},
    prepared?: PreparedPrompt,
  ): Promise<InterventionResult> {
    validateInterventions(interventions, this.set, tokenIds.length);
    validateTrackTokens(opts, this.model.config.vocabSize);
    cancelCheck(opts.signal)();
    if (opts.freezeAttention) {
      throw new EngineError(
        'argument',
        'freezeAttention applies to the closed loop (the open loop freezes every pattern already)',
        {
          field: 'freezeAttention',
        },
      );
    }
    if (!prepared) opts.onProgress?.({ phase: 'prepare', done: 0, total: 1 });
    const p = prepared ?? (await this.attributor.prepare(tokenIds));
    if (!prepared) opts.onProgress?.({ phase: 'prepare', done: 1, total: 1 });
    const { space } = p;
    const scale = new Map<number, number>();
    const extra: { layer: number; position: number; vector: Float32Array }[] = [];
    const d = this.set.dModel;
    // Only the edited features move in the open loop; every other one is held at its value.
    const editedActivations: ActivationChange[] = [];
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
      const was = active >= 0 ? space.featureActivation[active] : 0;
      const now = iv.mode === 'ablate' ? 0 : iv.mode === 'scale' ? was * iv.value : iv.value;
      if (now !== was) {
        editedActivations.push({
          layer: iv.layer,
          position: iv.position,
          feature: iv.feature,
          before: was,
          after: now,
        });
      }
      if (active >= 0) {
        const a = space.featureActivation[active];
        scale.set(active, iv.mode === 'ablate' ? 0 : iv.mode === 'scale' ? iv.value : iv.value / a);
      } else if (iv.mode === 'set' && iv.value !== 0) {
        // An inactive feature switched on: its decoder rows, scaled, at every layer it writes.
        const rows = this.set.decoderRowsFloat32(iv.layer, [iv.feature]);
        const slots = this.set.kind === 'clt' ? this.set.nLayers - iv.layer : 1;
        for (let j = 0; j < slots; j++) {
          extra.push({
            layer: iv.layer + j,
            position: iv.position,
            vector: rows.slice(j * d, (j + 1) * d).map((v) => v * iv.value),
          });
        }
      }
    }
    const columnScale = (c: number) => scale.get(c) ?? 1;
    const check = cancelCheck(opts.signal);
    const progress = (phase: string, done: number) => opts.onProgress?.({ phase, done, total: 1 });
    progress('baseline', 0);
    const base = await p.runner.frozenForward(() => 1);
    progress('baseline', 1);
    check();
    progress('intervene', 0);
    const edited = await p.runner.frozenForward(columnScale, extra);
    check();
    const change = await p.runner.frozenLogitChange(columnScale, extra);
    progress('intervene', 1);
    const top = opts.top ?? 10;
    const V = base.logitsLast.length;
    const before = topNextTokens(base.logitsLast, 1, V, top);
    const after = topNextTokens(edited.logitsLast, 1, V, top);
    const changes = compare(before, after, base.logitsLast, edited.logitsLast, opts.trackTokens);
    const inputChanges = this.inputChanges(
      p,
      base,
      edited,
      editedActivations,
      opts.maxActivationChanges ?? 50,
    );
    const db = demeaned(base.logitsPreLast);
    const da = demeaned(edited.logitsPreLast);
    const dc = demeaned(change);
    return {
      loop: 'open',
      before,
      after,
      changes,
      activationChanges: editedActivations.sort(
        (x, y) => Math.abs(y.after - y.before) - Math.abs(x.after - x.before),
      ),
      generated: [],
      inputChanges,
      targetLogitChanges: trackedTokens(opts, changes).map((id) => ({
        tokenId: id,
        before: db(id),
        after: da(id),
        delta: dc(id),
      })),
    };
  }

  /**
   * Each active feature's input change between two frozen runs: its encoder row times the
   * change of its read input (exactly zero upstream of the edits: the same float32 ops run
   * there). `before` is the real model's pre-activation.
   */
  private inputChanges(
    p: PreparedPrompt,
    base: { residPre: Float32Array[]; residMid: Float32Array[] },
    edited: { residPre: Float32Array[]; residMid: Float32Array[] },
    exclude: readonly ActivationChange[],
    limit: number,
  ): ActivationChange[] {
    const { space, cache, targets } = p;
    const d = cache.d;
    const skip = new Set(exclude.map((e) => `${e.layer}:${e.feature}:${e.position}`));
    // The read input's change, once per (layer, position); null where it did not change.
    const readChange = new Map<number, Float64Array | null>();
    const changeAt = (l: number, pos: number): Float64Array | null => {
      const key = l * cache.T + pos;
      if (readChange.has(key)) return readChange.get(key)!;
      const residual = (r: typeof base) => (targets.readsResidPre ? r.residPre[l] : r.residMid[l]);
      const xb = targets.readInput(l, residual(base), pos);
      const xe = targets.readInput(l, residual(edited), pos);
      const dx = new Float64Array(d);
      let any = false;
      for (let k = 0; k < d; k++) {
        dx[k] = xe[k] - xb[k];
        if (dx[k] !== 0) any = true;
      }
      readChange.set(key, any ? dx : null);
      return any ? dx : null;
    };
    const out: ActivationChange[] = [];
    for (let i = 0; i < space.nActive; i++) {
      const l = space.featureLayer[i];
      const pos = space.featurePosition[i];
      const f = space.featureIndex[i];
      if (skip.has(`${l}:${f}:${pos}`)) continue;
      const dx = changeAt(l, pos);
      if (!dx) continue;
      const w = p.encoderRows[i];
      let delta = 0;
      for (let k = 0; k < d; k++) delta += w[k] * dx[k];
      if (delta === 0) continue;
      const before = cache.preActivations[l][pos * this.set.dTranscoderPerLayer[l] + f];
      out.push({ layer: l, position: pos, feature: f, before, after: before + delta });
    }
    out.sort((x, y) => Math.abs(y.after - y.before) - Math.abs(x.after - x.before));
    return out.slice(0, limit);
  }

  /**
   * One closed-loop run. `frozenPatterns` (per layer [H, T, T]) replaces every attention
   * pattern; `fetchPatterns` also returns the patterns each layer used.
   */
  private async runClosed(
    tokenIds: readonly number[],
    edits: readonly FeatureIntervention[],
    promptLength: number,
    attention: { frozenPatterns?: Float32Array[]; fetchPatterns?: boolean } = {},
  ) {
    const T = tokenIds.length;
    const H = this.model.config.nHeads;
    const frozen = attention.frozenPatterns;
    const d = this.model.config.hiddenSize;
    const feeds: Record<string, ort.Tensor> = {
      ...this.attributor.forward.feeder.feeds(this.closedLoop.inputNames),
      [forwardInputs.tokenEmbeddings]: new ort.Tensor(
        'float32',
        this.model.tensors.readRowsFloat32(this.model.weightNames.embed, tokenIds),
        [T, d],
      ),
      [interventionInputs.freezeAttention]: new ort.Tensor('bool', new Uint8Array([frozen ? 1 : 0]), []),
    };
    const placeholder = new ort.Tensor('float32', new Float32Array(1), [1, 1, 1]);
    for (let l = 0; l < this.set.nLayers; l++) {
      const dT = this.set.dTranscoderPerLayer[l];
      const mul = new Float32Array(T * dT).fill(1);
      const add = new Float32Array(T * dT);
      for (const iv of edits) {
        if (iv.layer !== l || iv.position >= promptLength) continue;
        const k = iv.position * dT + iv.feature;
        mul[k] = iv.mode === 'scale' ? iv.value : 0;
        add[k] = iv.mode === 'set' ? iv.value : 0;
      }
      feeds[interventionInputs.mul(l)] = new ort.Tensor('float32', mul, [T, dT]);
      feeds[interventionInputs.add(l)] = new ort.Tensor('float32', add, [T, dT]);
      feeds[interventionInputs.frozenPattern(l)] = frozen
        ? new ort.Tensor('float32', frozen[l], [H, T, T])
        : placeholder;
    }
    const L = this.set.nLayers;
    const fetch = [
      'unembed.hook_in',
      ...Array.from({ length: L }, (_, l) => transcoderHookNames(l).acts),
      ...(attention.fetchPatterns ? Array.from({ length: L }, (_, l) => patternOutput(l)) : []),
    ];
    const out = await runSession(this.closedLoop, feeds, fetch);
    const head = this.attributor.forward.head;
    const unembedIn = out['unembed.hook_in'].data as Float32Array;
    const preLast = await head.logitsPre(unembedIn.subarray((T - 1) * d, T * d), 1);
    return {
      last: head.applySoftcap(preLast),
      preLast,
      acts: Array.from({ length: L }, (_, l) => out[transcoderHookNames(l).acts].data as Float32Array),
      patterns: attention.fetchPatterns
        ? Array.from({ length: L }, (_, l) => out[patternOutput(l)].data as Float32Array)
        : undefined,
    };
  }

  /**
   * The attention patterns every layer uses on `tokenIds` ([H, T, T] per layer), with `edits`
   * applied closed loop (none: the original model's); with `freezeAttention` they are the
   * original prompt's by construction. For checks and the bench.
   */
  async closedLoopPatterns(
    tokenIds: number[],
    edits: readonly FeatureIntervention[] = [],
    opts: { freezeAttention?: boolean } = {},
  ): Promise<Float32Array[]> {
    if (edits.length) validateInterventions(edits, this.set, tokenIds.length);
    this.attributor.forward.validateTokenIds(tokenIds);
    const T = tokenIds.length;
    const base = await this.runClosed(tokenIds, [], T, { fetchPatterns: true });
    if (!edits.length) return base.patterns!;
    const frozenPatterns = opts.freezeAttention ? base.patterns : undefined;
    return (await this.runClosed(tokenIds, edits, T, { frozenPatterns, fetchPatterns: true })).patterns!;
  }

  async closedLoopIntervention(
    tokenIds: number[],
    interventions: readonly FeatureIntervention[],
    opts: InterventionOptions = {},
  ): Promise<InterventionResult> {
    validateInterventions(interventions, this.set, tokenIds.length);
    this.attributor.forward.validateTokenIds(tokenIds);
    validateTrackTokens(opts, this.model.config.vocabSize);
    const nGenerate = opts.generate ?? 0;
    if (opts.freezeAttention && nGenerate > 0) {
      throw new EngineError(
        'argument',
        'freezeAttention cannot be combined with generate: the continuation positions have no original attention pattern to hold',
        { field: 'freezeAttention' },
      );
    }
    const check = cancelCheck(opts.signal);
    const progress = (phase: string, done: number, total = 1) => opts.onProgress?.({ phase, done, total });
    check();
    const T = tokenIds.length;
    progress('baseline', 0);
    const base = await this.runClosed(tokenIds, [], T, { fetchPatterns: opts.freezeAttention });
    progress('baseline', 1);
    check();
    progress('intervene', 0);
    const edited = await this.runClosed(tokenIds, interventions, T, { frozenPatterns: base.patterns });
    progress('intervene', 1);
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
    if (nGenerate > 0) {
      const seq = [...tokenIds];
      let last = edited.last;
      progress('generate', 0, nGenerate);
      for (let i = 0; i < nGenerate; i++) {
        let best = 0;
        for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
        generated.push(best);
        seq.push(best);
        if (i + 1 < nGenerate) {
          check();
          last = (await this.runClosed(seq, interventions, T)).last;
        }
        progress('generate', i + 1, nGenerate);
      }
    }
    const changes = compare(before, after, base.last, edited.last, opts.trackTokens);
    const db = demeaned(base.preLast);
    const da = demeaned(edited.preLast);
    return {
      loop: 'closed',
      before,
      after,
      changes,
      activationChanges: activationChanges.slice(0, opts.maxActivationChanges ?? 50),
      generated,
      targetLogitChanges: trackedTokens(opts, changes).map((id) => ({
        tokenId: id,
        before: db(id),
        after: da(id),
        delta: da(id) - db(id),
      })),
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.attributor.close(), releaseSession(this.closedLoop)]);
  }
}
