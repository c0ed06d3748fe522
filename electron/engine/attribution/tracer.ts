import path from 'node:path';
import { EngineError } from '../errors.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { openReplacement, replacementKey } from '../model/open-replacement.ts';
import { type PrunedGraph, pruneGraph } from '../pruning/index.ts';
import type { ProviderChoice, ProviderName } from '../runtime/providers.ts';
import { type PromptTokenizer, tokenNamer } from '../tokenizer/index.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import {
  type AttributionSettings,
  Attributor,
  type BackwardSummary,
  type LogitTarget,
  validateAttributionSettings,
} from './attribute.ts';
import { DEFAULT_MAX_FEATURE_NODES, type TraceProgress, type TraceSettings } from './defaults.ts';
import type { RawAttributionGraph } from './graph-types.ts';
import { parseTargetSpecs } from './target-json.ts';
import { resolveTargetSpecs, type TargetVocabulary, targetVocabulary } from './target-spec.ts';

export interface TracerOptions {
  provider: ProviderChoice;
  /** Passed on to the Attributor (see AttributorOptions.cacheRoot). */
  cacheRoot?: string;
  threads?: number;
  onWarning?: (message: string) => void;
}

/** A prompt to tokenize, or its token ids (BOS included) as given. */
export type TraceInput = { prompt: string } | { tokenIds: number[] };

export interface TraceRunOptions {
  signal?: AbortSignal;
  /** The attribution phases (forward, setup, logits, features, assemble), then prune. */
  onProgress?: (p: TraceProgress) => void;
  /** Whether the caller keeps the graph (the library): counted in the memory estimate. Default true. */
  storesGraph?: boolean;
}

export interface TraceResult {
  raw: RawAttributionGraph;
  /** Pruned at the settings' thresholds. */
  pruned: PrunedGraph;
  tokenIds: number[];
  /** The logit nodes: the top logits, or the settings' targets (with their labels). */
  logitTokens: LogitTarget[];
  activeFeatures: number;
  /** The settings in force, as a trace records them: the feature cap resolved, the provider used. */
  settings: TraceSettings;
  /** The provider the sessions run on (what `auto` chose). */
  provider: ProviderName;
  /** compile_and_load (the first trace of this Tracer only), the attribution phases, prune. */
  timingsMs: Record<string, number>;
  /** How the backward ran (runs, their largest shape, device memory held). */
  backward: BackwardSummary;
}

function checkThreshold(value: number, field: string): void {
  if (!(typeof value === 'number' && value >= 0 && value <= 1))
    throw new EngineError('argument', `${field} must be in [0, 1], got ${value}`, { field });
}

export class Tracer {
  /** Milliseconds `open` took, reported once, by the first trace. */
  private openMs: number | null;
  /** Token id → its string (`<id>` without a tokenizer or beyond its vocabulary). */
  readonly tokenToString: (id: number) => string;
  /** Resolves the token strings of targets (`<id>` names only without a tokenizer). */
  readonly targetVocabulary: TargetVocabulary;

  private constructor(
    private readonly key: string,
    readonly model: OpenedModel,
    readonly set: TranscoderSet,
    readonly attributor: Attributor,
    /** null: the model folder has no tokenizer.json (token-id input only). */
    readonly tokenizer: PromptTokenizer | null,
    openMs: number,
  ) {
    this.openMs = openMs;
    this.tokenToString = tokenNamer(tokenizer);
    this.targetVocabulary = targetVocabulary(model.config.vocabSize, tokenizer);
  }

  static async open(checkpointDir: string, transcoderDir: string, opts: TracerOptions): Promise<Tracer> {
    const started = performance.now();
    return openReplacement(checkpointDir, transcoderDir, async ({ model, set, tokenizer }) => {
      const attributor = await Attributor.create(model, set, {
        provider: opts.provider,
        cacheRoot: opts.cacheRoot,
        threads: opts.threads,
        onWarning: opts.onWarning,
      });
      const key = replacementKey(checkpointDir, transcoderDir, opts);
      return new Tracer(key, model, set, attributor, tokenizer, performance.now() - started);
    });
  }

  /**
   * `previous` when it matches, else a new Tracer (`previous` is closed first, so two models
   * never share the memory). The caller drops its reference to `previous` before awaiting: a
   * failed open leaves it closed. Reports the `load` phase.
   */
  static async reuseOrOpen(
    previous: Tracer | null,
    checkpointDir: string,
    transcoderDir: string,
    opts: TracerOptions,
    onProgress?: (p: TraceProgress) => void,
  ): Promise<Tracer> {
    onProgress?.({ phase: 'load', done: 0, total: 1 });
    let tracer = previous;
    if (!tracer?.matches(checkpointDir, transcoderDir, opts)) {
      await previous?.close().catch(() => undefined); // a failed release must not block the next model
      tracer = await Tracer.open(checkpointDir, transcoderDir, opts);
    }
    onProgress?.({ phase: 'load', done: 1, total: 1 });
    return tracer;
  }

  /** Whether this Tracer is what `open` with these arguments would give (a warm worker reuses it). */
  matches(checkpointDir: string, transcoderDir: string, opts: TracerOptions): boolean {
    return this.key === replacementKey(checkpointDir, transcoderDir, opts);
  }

  get provider(): ProviderName {
    return this.attributor.provider;
  }

  /** The input's token ids, checked against the model (at least BOS and one token, the context, the vocabulary). */
  tokenize(input: TraceInput): number[] {
    let tokenIds: number[];
    if ('tokenIds' in input) {
      tokenIds = input.tokenIds;
    } else if (this.tokenizer) {
      tokenIds = this.tokenizer.encodePrompt(input.prompt);
    } else {
      const file = path.join(this.model.dir, 'tokenizer.json');
      const message = 'the model has no tokenizer.json: give token ids instead of a prompt';
      throw new EngineError('tokenizer', message, { file });
    }
    if (tokenIds.length < 2)
      throw new EngineError('argument', 'the prompt has no tokens after BOS', { field: 'prompt' });
    const context = this.model.config.maxPositions;
    if (tokenIds.length > context) {
      throw new EngineError(
        'argument',
        `the prompt is ${tokenIds.length} tokens, beyond the model's context of ${context}`,
        { field: 'prompt' },
      );
    }
    this.attributor.forward.validateTokenIds(tokenIds);
    return tokenIds;
  }

  /** The attribution settings of a trace: the default cap for null, targets parsed and checked against the model. */
  private attributionSettings(settings: TraceSettings): AttributionSettings {
    const s: AttributionSettings = {
      maxNLogits: settings.maxNLogits,
      desiredLogitProb: settings.desiredLogitProb,
      maxFeatureNodes: settings.maxFeatureNodes ?? DEFAULT_MAX_FEATURE_NODES,
      batchSize: settings.batchSize,
      targets: settings.targets ? parseTargetSpecs(settings.targets) : null,
    };
    validateAttributionSettings(s);
    checkThreshold(settings.nodeThreshold, 'nodeThreshold');
    checkThreshold(settings.edgeThreshold, 'edgeThreshold');
    // Token strings and vector sizes are checked before the forward pass, not after it.
    if (s.targets) resolveTargetSpecs(s.targets, this.targetVocabulary, this.model.config.hiddenSize);
    return s;
  }

  async trace(input: TraceInput, settings: TraceSettings, run: TraceRunOptions = {}): Promise<TraceResult> {
    const tokenIds = this.tokenize(input);
    const attribution = this.attributionSettings(settings);
    if (run.signal?.aborted) throw new EngineError('cancelled', 'attribution was cancelled');
    const result = await this.attributor.attribute(tokenIds, attribution, {
      signal: run.signal,
      onProgress: run.onProgress,
      tokenToString: this.tokenToString,
      targetVocabulary: this.targetVocabulary,
      storesGraph: run.storesGraph ?? true,
    });
    try {
      if (run.signal?.aborted) throw new EngineError('cancelled', 'attribution was cancelled');
      run.onProgress?.({ phase: 'prune', done: 0, total: 1 });
      const pruneStart = performance.now();
      const pruned = pruneGraph(result.graph, {
        nodeThreshold: settings.nodeThreshold,
        edgeThreshold: settings.edgeThreshold,
      });
      const pruneMs = performance.now() - pruneStart;
      run.onProgress?.({ phase: 'prune', done: 1, total: 1 });
      const timingsMs: Record<string, number> = this.openMs === null ? {} : { compile_and_load: this.openMs };
      Object.assign(timingsMs, result.timingsMs, { prune: pruneMs });
      this.openMs = null;
      return {
        raw: result.graph,
        pruned,
        tokenIds,
        logitTokens: result.logitTokens,
        activeFeatures: result.prepared.space.nActive,
        settings: {
          maxNLogits: settings.maxNLogits,
          desiredLogitProb: settings.desiredLogitProb,
          maxFeatureNodes: attribution.maxFeatureNodes ?? DEFAULT_MAX_FEATURE_NODES,
          batchSize: settings.batchSize,
          targets: settings.targets ?? null,
          nodeThreshold: settings.nodeThreshold,
          edgeThreshold: settings.edgeThreshold,
          provider: this.provider,
        },
        provider: this.provider,
        timingsMs,
        backward: result.backward,
      };
    } finally {
      await result.prepared.runner.release();
    }
  }

  async close(): Promise<void> {
    try {
      await this.attributor.close();
    } finally {
      this.set.close();
      this.model.close();
    }
  }
}
