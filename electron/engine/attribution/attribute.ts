/**
 * Attribution of one prompt (attribution.md §2–§4): forward cache → logit targets →
 * backward batches → feature selection → the raw adjacency in circuit-tracer's layout.
 */
import { EngineError } from '../errors.ts';
import { ForwardPass } from '../model/forward-pass.ts';
import type { OpenedModel } from '../model/open-model.ts';
import type { DeviceMemory } from '../runtime/device-memory.ts';
import type { DeviceTensors } from '../runtime/device-tensors.ts';
import { prefaultedFloat32 } from '../runtime/prefaulted.ts';
import type { ProviderChoice, ProviderName } from '../runtime/providers.ts';
import { createSession, type ort, releaseSession, type SessionOptions } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { assembleGraph, graphNodeCount } from './assemble.ts';
import { backwardCostModel, batchCuts, planBatchesByCost } from './batch-plan.ts';
import { backwardConstantSpec, compileBackward, compileFrozenForward } from './compile.ts';
import { DEFAULT_MAX_FEATURE_NODES } from './defaults.ts';
import { EncoderRows } from './encoder-rows.ts';
import {
  attentionHalfPoint,
  BatchCostModel,
  FeaturesEta,
  type PlannedBatch,
  planBatches,
  type RowWork,
} from './eta.ts';
import { type ForwardCache, runForwardCache } from './forward-cache.ts';
import type { RawAttributionGraph } from './graph-types.ts';
import type { BackwardConstantSpec, BackwardForm } from './linear-model.ts';
import { type BackwardRunStats, LinearModelRunner } from './linear-runner.ts';
import {
  assertFitsInMemory,
  estimateTraceMemory,
  type SourceShape,
  type TraceShape,
} from './memory-estimate.ts';
import { PartialInfluence } from './partial-influence.ts';
import { DeviceSourceBuilder } from './source-builder.ts';
import { buildSourceSpace, type SourceSpace } from './sources.ts';
import {
  type AttributionTargetSpec,
  resolveTargetSpecs,
  type TargetVocabulary,
  targetVocabulary,
  targetWeight,
} from './target-spec.ts';
import { selectLogitTokens, softmaxProbability, type Target, TargetBuilder } from './targets.ts';

export interface AttributionSettings {
  maxNLogits: number;
  desiredLogitProb: number;
  /**
   * Most feature rows (chosen by influence when fewer than the active features). Absent:
   * DEFAULT_MAX_FEATURE_NODES (7500); a value ≥ the number of active features: all of them.
   */
  maxFeatureNodes?: number;
  batchSize: number;
  /**
   * The caller's targets (target-spec.ts), in place of the top-logit selection (maxNLogits and
   * desiredLogitProb are then unused). Absent or null: the top logits.
   */
  targets?: readonly AttributionTargetSpec[] | null;
}

/** A logit node: its token (or virtual id), influence weight, and for caller's targets label and direction. */
export interface LogitTarget {
  tokenId: number;
  /** The influence weight: the softmax probability for top logits (see target-spec.ts for targets). */
  prob: number;
  label?: string;
  /** Direction at the unembedding input (caller's targets only; top logits: u_k − mean). */
  direction?: Float32Array;
}

/** Batches computed between two estimates of feature influence during capped selection. */
const INFLUENCE_UPDATE_BATCHES = 4;

export const DEFAULT_ATTRIBUTION_SETTINGS: AttributionSettings = {
  maxNLogits: 10,
  desiredLogitProb: 0.95,
  maxFeatureNodes: DEFAULT_MAX_FEATURE_NODES,
  batchSize: 256,
};

export type AttributionPhase = 'forward' | 'setup' | 'logits' | 'features' | 'assemble';

export interface AttributionProgress {
  phase: AttributionPhase;
  done: number;
  total: number;
  etaSeconds?: number;
}

export interface AttributionRunOptions {
  onProgress?: (p: AttributionProgress) => void;
  /** Bytes the trace may use (default: most of the machine's memory). */
  memoryLimitBytes?: number;
  /** The caller also keeps the graph as CSR (the library): counted in the memory estimate. */
  storesGraph?: boolean;
  signal?: AbortSignal;
  tokenToString?: (id: number) => string;
  /** Resolves token strings of `settings.targets` (default: `<id>` names only). */
  targetVocabulary?: TargetVocabulary;
}

export interface AttributorOptions {
  provider?: ProviderChoice;
  /**
   * Not read by attribution, whose graphs hold no weights and are built in memory; the jobs
   * pass it on to the dashboards' logit lens, the one graph still cached on disk.
   */
  cacheRoot?: string;
  threads?: number;
  onWarning?: (message: string) => void;
  /** Decoded float32 weights kept resident at most: host memory on the CPU, device memory on a GPU (model/forward-pass.ts). */
  residentWeightBytes?: number;
  /** Where weights and per-prompt constants stay between runs (default: the provider's device). */
  device?: (provider: ProviderName) => DeviceTensors;
}

/** One prompt prepared for attribution and interventions. */
export interface PreparedPrompt {
  cache: ForwardCache;
  space: SourceSpace;
  runner: LinearModelRunner;
  targets: TargetBuilder;
  /** Encoder row [d] and b_enc of every active feature (by active index). */
  encoderRows: Float32Array[];
  encoderBias: Float32Array;
  featureTarget(activeIndex: number): Target;
  /**
   * The forward phase's parts (ms): the forward cache's (the model's run, then the host's sparse
   * scan, decoder rows and reconstruction), the source space, and the active features' encoder rows.
   */
  timingsMs: ForwardCache['timingsMs'] & { sources: number; encoderRows: number };
}

export interface AttributionResult {
  graph: RawAttributionGraph;
  prepared: PreparedPrompt;
  /** Active indices of the selected features, ascending (the graph's feature order). */
  selected: number[];
  /** Rows over the full source column space (all active features, errors, tokens). */
  featureRows: Map<number, Float32Array>;
  logitRows: Float32Array[];
  logitTokens: LogitTarget[];
  timingsMs: Record<AttributionPhase, number>;
  backward: BackwardSummary;
}

/** How the backward ran: runs, their largest shape, the provider and what it held on its device. */
export interface BackwardSummary extends BackwardRunStats {
  provider: ProviderName;
  /** The model's weights held in device memory (0 on the CPU). */
  deviceWeightBytes: number;
  /** The GPU's memory when it could be known (runtime/device-memory.ts); null on the CPU or unknown. */
  deviceMemory: DeviceMemory | null;
}

export function validateAttributionSettings(s: AttributionSettings): void {
  const bad = (field: string, msg: string) => {
    throw new EngineError('argument', `${field} ${msg}`, { field });
  };
  if (!(s.desiredLogitProb > 0 && s.desiredLogitProb <= 1)) bad('desired_logit_prob', 'must be in (0, 1]');
  if (!Number.isInteger(s.maxNLogits) || s.maxNLogits <= 0) bad('max_n_logits', 'must be a positive integer');
  if (!Number.isInteger(s.batchSize) || s.batchSize <= 0) bad('batch_size', 'must be a positive integer');
  if (s.maxFeatureNodes !== undefined && (!Number.isInteger(s.maxFeatureNodes) || s.maxFeatureNodes <= 0)) {
    bad('max_feature_nodes', 'must be a positive integer');
  }
}

export class Attributor {
  private constructor(
    readonly model: OpenedModel,
    readonly set: TranscoderSet,
    readonly forward: ForwardPass,
    /** The linear model's sessions depend only on model + transcoders: made once, reused by every prompt. */
    private readonly frozen: ort.InferenceSession,
    private readonly sessionOpts: SessionOptions,
    /** The active features' encoder rows, gathered where the forward keeps the encoders. */
    readonly encoderRows: EncoderRows,
  ) {}

  /** Backward sessions by top layer (see backwardTop), made on first use. */
  private readonly backwardByTop = new Map<number, Promise<ort.InferenceSession>>();

  private backward(top: number): Promise<ort.InferenceSession> {
    let s = this.backwardByTop.get(top);
    if (!s) {
      // No per-session arena: one per top layer would each keep a batch's peak.
      const graph = compileBackward(this.model, this.set, this.forward.feeder, top, this.backwardForm());
      s = createSession(graph, {
        ...this.sessionOpts,
        cpuMemArena: false,
      }).then(async (o) => {
        await this.forward.feeder.ready(o.session.inputNames);
        return o.session;
      });
      this.backwardByTop.set(top, s);
    }
    return s;
  }

  private constantSpec?: Promise<BackwardConstantSpec>;

  /** The backward's constant spec, from the full backward graph's inputs (made here if not yet). */
  private backwardConstants(): Promise<BackwardConstantSpec> {
    this.constantSpec ??= this.backward(this.model.config.nLayers).then((s) =>
      backwardConstantSpec(this.model, this.set, s.inputNames),
    );
    return this.constantSpec;
  }

  /**
   * The backward graphs' form (linear-model.ts): on the CPU, ScatterND injection, per-layer
   * outputs scattered into rows on the host and constants cut per t on the host; on a GPU
   * provider, elementwise selects (no host round trip where a provider lacks ScatterND), the
   * finished rows gathered in the graph (one download per run, no host scatter) and, where
   * uploads land in device memory, the prompt's constants at full length (one upload per
   * prompt). `CIRCUIT_BACKWARD_INJECTION=scatter|select`,
   * `CIRCUIT_BACKWARD_OUTPUTS=layers|joined|rows` and `CIRCUIT_BACKWARD_CONSTANTS=per-t|prompt`
   * override each, for benchmarks; `CIRCUIT_BACKWARD_PRECISION=f32|f16` and
   * `CIRCUIT_BACKWARD_PROJECTION=gemm|matmul` choose the projections' precision and op (f32
   * Gemm unless asked). Every form runs each layer on the live rows only (the targets reading
   * above it; emitBackwardGraph); `CIRCUIT_BACKWARD_ROWS=all` runs every target of a batch
   * through every layer below the batch's top, for comparison. Every form runs the projections
   * on each target's positions up to its own only (BackwardPositions);
   * `CIRCUIT_BACKWARD_POSITIONS=all` on every position of the batch, for comparison.
   */
  private backwardForm(): BackwardForm {
    const gpu = this.provider !== 'cpu';
    const pick = <T extends string>(env: string, values: readonly T[], fallback: T): T => {
      const forced = process.env[env] as T | undefined;
      return forced && values.includes(forced) ? forced : fallback;
    };
    return {
      injection: pick('CIRCUIT_BACKWARD_INJECTION', ['scatter', 'select'], gpu ? 'select' : 'scatter'),
      outputs: pick('CIRCUIT_BACKWARD_OUTPUTS', ['layers', 'joined', 'rows'], gpu ? 'rows' : 'layers'),
      constants: pick(
        'CIRCUIT_BACKWARD_CONSTANTS',
        ['per-t', 'prompt'],
        this.forward.device.onDevice ? 'prompt' : 'per-t',
      ),
      precision: pick('CIRCUIT_BACKWARD_PRECISION', ['f32', 'f16'], 'f32'),
      projection: pick('CIRCUIT_BACKWARD_PROJECTION', ['gemm', 'matmul'], 'gemm'),
      positions: pick('CIRCUIT_BACKWARD_POSITIONS', ['live', 'all'], 'live'),
    };
  }

  get provider(): ProviderName {
    return this.forward.provider;
  }

  static async create(
    model: OpenedModel,
    set: TranscoderSet,
    opts: AttributorOptions = {},
  ): Promise<Attributor> {
    const forward = await ForwardPass.create(model, { ...opts, transcoders: set });
    try {
      const sessionOpts = { ...opts, provider: forward.provider };
      const frozen = await createSession(compileFrozenForward(model, set, forward.feeder), sessionOpts);
      await forward.feeder.ready(frozen.session.inputNames);
      const encoderRows = new EncoderRows(set, forward.feeder, sessionOpts);
      return new Attributor(model, set, forward, frozen.session, sessionOpts, encoderRows);
    } catch (e) {
      await forward.close();
      throw e;
    }
  }

  private sourceBuilder?: DeviceSourceBuilder;

  /**
   * Where the forward keeps tensors on a GPU, the builder of the backward's source blocks there
   * (source-builder.ts); `CIRCUIT_BACKWARD_SOURCES=host` fills them on the host instead, for comparison.
   */
  private deviceSourceBuilder(): DeviceSourceBuilder | undefined {
    if (!this.forward.device.onDevice || process.env.CIRCUIT_BACKWARD_SOURCES === 'host') return undefined;
    this.sourceBuilder ??= new DeviceSourceBuilder(
      { ...this.sessionOpts, provider: this.provider },
      this.model.config.hiddenSize,
    );
    return this.sourceBuilder;
  }

  /** The latest prompt's runner: its device-held constants are freed when the next prompt comes. */
  private latestRunner?: LinearModelRunner;

  async prepare(tokenIds: number[]): Promise<PreparedPrompt> {
    await this.latestRunner?.dropConstants();
    const cache = await runForwardCache(this.forward, this.set, tokenIds);
    // The backward streams nothing: the forward's per-layer arrays are not needed until the next prompt.
    this.forward.feeder.dropPool();
    let clock = performance.now();
    const space = buildSourceSpace(this.set, cache);
    cache.decoderRows = null; // copied into the source blocks; the rows themselves are not needed again
    const sourcesMs = performance.now() - clock;
    const decoderBias = Array.from({ length: this.set.nLayers }, (_, l) => this.set.decoderBiasFloat32(l));
    const runner = new LinearModelRunner(
      this.model.config,
      cache,
      space,
      (top) => this.backward(top),
      this.frozen,
      decoderBias,
      this.forward.feeder,
      this.forward.head,
      this.forward.device,
      this.forward.deviceMemory,
      () => this.backwardConstants(),
      this.backwardForm().outputs,
      process.env.CIRCUIT_BACKWARD_ROWS !== 'all',
      this.deviceSourceBuilder(),
    );
    this.latestRunner = runner;
    const targets = new TargetBuilder(this.model, this.set, cache);
    clock = performance.now();
    const encoderRows: Float32Array[] = new Array(space.nActive);
    const encoderBias = new Float32Array(space.nActive);
    const d = cache.d;
    for (let l = 0; l < this.set.nLayers; l++) {
      const members: number[] = [];
      for (let i = 0; i < space.nActive; i++) if (space.featureLayer[i] === l) members.push(i);
      if (!members.length) continue;
      // Only the active features' encoder rows (real encoders are 100s of MB a layer): gathered
      // from the forward's resident encoder where it has one, else read (encoder-rows.ts).
      const unique = [...new Set(members.map((i) => space.featureIndex[i]))].sort((a, b) => a - b);
      const rowOf = new Map(unique.map((f, k) => [f, k]));
      const enc = await this.encoderRows.rows(l, unique);
      const bias = this.set.encoderBiasFloat32(l);
      for (const i of members) {
        const f = space.featureIndex[i];
        const k = rowOf.get(f)!;
        encoderRows[i] = enc.subarray(k * d, (k + 1) * d);
        encoderBias[i] = bias[f];
      }
    }
    return {
      cache,
      space,
      runner,
      targets,
      encoderRows,
      encoderBias,
      timingsMs: { ...cache.timingsMs, sources: sourcesMs, encoderRows: performance.now() - clock },
      featureTarget: (i) =>
        targets.featureTarget(space.featureLayer[i], space.featurePosition[i], encoderRows[i]),
    };
  }

  async attribute(
    tokenIds: number[],
    settings: AttributionSettings = DEFAULT_ATTRIBUTION_SETTINGS,
    run: AttributionRunOptions = {},
  ): Promise<AttributionResult> {
    validateAttributionSettings(settings);
    const timings: Record<AttributionPhase, number> = {
      forward: 0,
      setup: 0,
      logits: 0,
      features: 0,
      assemble: 0,
    };
    const clock = { phase: 'forward' as AttributionPhase, start: performance.now() };
    const enter = (phase: AttributionPhase) => {
      const now = performance.now();
      timings[clock.phase] += now - clock.start;
      clock.phase = phase;
      clock.start = now;
    };
    const checkCancel = () => {
      if (run.signal?.aborted) throw new EngineError('cancelled', 'attribution was cancelled');
    };
    const maxFeatureNodes = settings.maxFeatureNodes ?? DEFAULT_MAX_FEATURE_NODES;
    const cfg = this.model.config;
    const shape: TraceShape = {
      T: tokenIds.length,
      d: cfg.hiddenSize,
      nLayers: cfg.nLayers,
      nHeads: cfg.nHeads,
      dTranscoder: this.set.dTranscoderPerLayer,
      nLogits: settings.targets?.length ?? settings.maxNLogits,
      batchSize: settings.batchSize,
      storesGraph: run.storesGraph,
    };
    // Refused before the forward pass when even a graph without features cannot fit.
    assertFitsInMemory(estimateTraceMemory(shape, 0), maxFeatureNodes, undefined, run.memoryLimitBytes);
    run.onProgress?.({ phase: 'forward', done: 0, total: 1 });
    const prepared = await this.prepare(tokenIds);
    try {
      enter('setup');
      checkCancel();
      const { space, targets } = prepared;
      const logitTokens: LogitTarget[] = settings.targets
        ? callerTargets(prepared, settings.targets, run)
        : selectLogitTokens(prepared.cache, settings.maxNLogits, settings.desiredLogitProb);
      const cap = Math.min(maxFeatureNodes, space.nActive);
      const sourceShape: SourceShape = {
        nActive: space.nActive,
        nColumns: space.nColumns,
        // The blocks' compact form (rows; columns, row indices, coefficients) and one dense block
        // each, plain or with the post-feed-forward norm folded in (the CPU's; a GPU's are on the device).
        sourceBytes: space.blocks.reduce(
          (s, b) => s + b.rows.byteLength + b.vectorBytes + b.columns.byteLength * 3,
          0,
        ),
        blockWidths: space.blocks.map((b) => b.n),
      };
      // Refused before any backward batch when the rows, adjacency and pruning cannot fit.
      assertFitsInMemory(
        estimateTraceMemory({ ...shape, nLogits: logitTokens.length }, cap, sourceShape),
        maxFeatureNodes,
        space.nActive,
        run.memoryLimitBytes,
      );
      enter('logits');
      run.onProgress?.({ phase: 'logits', done: 0, total: 1 });
      const logitRows = await prepared.runner.rows(
        logitTokens.map((t) =>
          t.direction ? targets.directionTarget(t.direction) : targets.logitTarget(t.tokenId),
        ),
      );
      run.onProgress?.({ phase: 'logits', done: 1, total: 1 });

      enter('features');
      // The graph's size is known now (every selected feature gets a row): its adjacency is made
      // here and its pages faulted in by a worker while the backward runs (runtime/prefaulted.ts).
      const nodes = graphNodeCount(cap, cfg.nLayers, shape.T, logitTokens.length);
      const adjacency = prefaultedFloat32(nodes * nodes);
      const B = settings.batchSize;
      const position = (i: number) => space.featurePosition[i];
      const byPosition = (a: number, b: number) => position(a) - position(b) || a - b;
      const featureRows = new Map<number, Float32Array>();
      const meanSlots = space.blocks.reduce((s, b) => s + b.n, 0) / Math.max(1, space.blocks.length);
      const eta = new FeaturesEta(
        attentionHalfPoint(cfg.hiddenSize, cfg.nHeads, cfg.headDim, meanSlots),
        cfg.nLayers,
      );
      const layer = (i: number) => space.featureLayer[i];
      const work: RowWork = {
        liveRows: prepared.runner.liveRows,
        livePositions: this.backwardForm().positions === 'live',
      };
      // Batches of position-sorted targets: every B, or with CIRCUIT_BATCH_CUTS where a cost
      // model says it pays (batch-plan.ts: fewer positions run past the targets' own, against
      // more runs, each reading its layers' weights): `cost` by shape, `timed` by the batch times
      // fitted so far (B-cuts until three are timed), `positions` wherever the position changes.
      const cuts = batchCuts();
      const shapeCost = backwardCostModel({
        nLayers: cfg.nLayers,
        d: cfg.hiddenSize,
        nHeads: cfg.nHeads,
        nKvHeads: cfg.nKvHeads,
        headDim: cfg.headDim,
        meanBlockWidth: meanSlots,
        skip: this.set.hasSkip,
      });
      /** The cost model cuts follow (undefined: B-cuts; `timed` until three batches are timed). */
      const costModel = (): BatchCostModel | undefined =>
        cuts === 'fixed'
          ? undefined
          : cuts === 'positions'
            ? new BatchCostModel(0, 0, 1, 1, cfg.nLayers) // (the mixing's t² still drops at a cut under live positions)
            : cuts === 'timed'
              ? eta.fittedBatchMs()
              : shapeCost;
      const cutBatches = (targets: readonly number[]): PlannedBatch[] => {
        const cost = costModel();
        const p = targets.map(position);
        const l = targets.map(layer);
        return cost ? planBatchesByCost(p, B, l, work, cost) : planBatches(p, B, l, work);
      };
      /** Runs `targets` (sorted by position) in the batches of `batches`, in order. */
      const runBatches = async (targets: readonly number[], batches: readonly PlannedBatch[]) => {
        let at = 0;
        for (const b of batches) {
          await computeBatch(targets.slice(at, at + b.rows));
          at += b.rows;
        }
      };
      // What is left: the planned batches (from plan[next] on) and the influence estimates to come.
      let plan: PlannedBatch[] = [];
      let next = 0;
      let estimatesLeft: number[] = [];
      let batchesDone = 0;
      const computeBatch = async (indices: number[]) => {
        checkCancel();
        const t0 = performance.now();
        const rows = await prepared.runner.rows(indices.map((i) => prepared.featureTarget(i)));
        for (const [k, i] of indices.entries()) featureRows.set(i, rows[k]);
        // The batch as planBatches describes one (positions, depth, mean depth, pairs' layers).
        const [ran] = planBatches(indices.map(position), indices.length, indices.map(layer), work);
        eta.recordBatch(ran, performance.now() - t0);
        batchesDone++;
        next++;
        run.onProgress?.({
          phase: 'features',
          done: batchesDone,
          total: batchesDone + plan.length - next,
          etaSeconds: eta.remainingSeconds(plan.slice(next), estimatesLeft),
        });
      };
      if (cap === space.nActive) {
        // All features: batch them by position so each batch stops at its last position. B-cuts
        // until a cost model is there (with `timed`, three batches in), then the rest cut by it.
        const order = Array.from({ length: space.nActive }, (_, i) => i).sort(byPosition);
        plan = planBatches(order.map(position), B, order.map(layer), work);
        let at = 0;
        for (; at < order.length && !costModel(); at += B) await computeBatch(order.slice(at, at + B));
        if (at < order.length) {
          const rest = order.slice(at);
          plan = [...plan.slice(0, next), ...cutBatches(rest)];
          await runBatches(rest, plan.slice(next));
        }
      } else {
        // Influence is re-estimated every few batches (as circuit-tracer does), not every batch:
        // each estimate is a pass over all rows computed so far.
        const perRound = B * INFLUENCE_UPDATE_BATCHES;
        const influence = new PartialInfluence(space.nColumns);
        for (const [k, row] of logitRows.entries()) influence.add(row, -1, logitTokens[k].prob);
        while (featureRows.size < cap) {
          const t0 = performance.now();
          for (const [i, row] of featureRows) if (!influence.has(i)) influence.add(row, i, 0);
          const estimate = influence.estimate();
          const candidates = Array.from({ length: space.nActive }, (_, i) => i)
            .filter((i) => !featureRows.has(i))
            .sort((a, b) => estimate[b] - estimate[a] || a - b);
          const take = candidates.slice(0, Math.min(perRound, cap - featureRows.size));
          take.sort(byPosition);
          // This round's batches, then later rounds predicted from the same ranking.
          const round = cutBatches(take);
          plan = [...round];
          estimatesLeft = [];
          for (let j = take.length, done = featureRows.size + take.length; done < cap; ) {
            const n = Math.min(perRound, cap - done);
            estimatesLeft.push(logitRows.length + done);
            const predicted = candidates.slice(j, j + n);
            plan.push(...cutBatches([...predicted].sort(byPosition)));
            j += n;
            done += n;
          }
          next = 0;
          eta.recordEstimate(influence.size, performance.now() - t0);
          await runBatches(take, round);
        }
      }

      enter('assemble');
      const selected = [...featureRows.keys()].sort((a, b) => a - b);
      const graph = assembleGraph(
        prepared,
        selected,
        featureRows,
        logitRows,
        logitTokens,
        tokenIds,
        run.tokenToString,
        selected.length === cap ? adjacency.array : undefined,
      );
      enter('assemble'); // closes the assemble phase's timing
      const backward: BackwardSummary = {
        ...prepared.runner.stats,
        provider: this.provider,
        deviceWeightBytes: this.forward.feeder.deviceBytes,
        deviceMemory: this.forward.deviceMemory,
      };
      return { graph, prepared, selected, featureRows, logitRows, logitTokens, timingsMs: timings, backward };
    } catch (e) {
      await prepared.runner.release();
      throw e;
    }
  }

  /**
   * Releases the backward sessions and the latest prompt's constants; the sessions are made again
   * on next use, in the form the environment then asks for (backwardForm): benchmarks compare
   * backward forms on one opened model without uploading it again.
   */
  async releaseBackwardSessions(): Promise<void> {
    await this.latestRunner?.dropConstants();
    const backward = await Promise.allSettled(this.backwardByTop.values());
    this.backwardByTop.clear();
    this.constantSpec = undefined;
    await Promise.all(backward.map((b) => (b.status === 'fulfilled' ? releaseSession(b.value) : undefined)));
  }

  async close(): Promise<void> {
    await this.releaseBackwardSessions();
    await Promise.all([
      this.forward.close(),
      releaseSession(this.frozen),
      this.encoderRows.release(),
      this.sourceBuilder?.release(),
    ]);
    this.forward.feeder.clear();
  }
}

/** The caller's targets resolved against the model, with their directions and influence weights. */
function callerTargets(
  prepared: PreparedPrompt,
  specs: readonly AttributionTargetSpec[],
  run: AttributionRunOptions,
): LogitTarget[] {
  const { cache } = prepared;
  const vocab = run.targetVocabulary ?? {
    ...targetVocabulary(cache.vocab, null),
    ...(run.tokenToString ? { name: run.tokenToString } : {}),
  };
  const resolved = resolveTargetSpecs(specs, vocab, cache.d);
  // Softmax of the final (soft-capped) logits, as the top-logit selection uses.
  const prob = softmaxProbability(cache.logits);
  return resolved.map((t) => ({
    tokenId: t.tokenId,
    prob: targetWeight(t, resolved.length, prob),
    label: t.label,
    direction: prepared.targets.resolvedDirection(t),
  }));
}
