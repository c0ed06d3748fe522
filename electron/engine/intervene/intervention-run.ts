import type { TraceProgress } from '../attribution/defaults.ts';
import { EngineError } from '../errors.ts';
import type { OpenedModel } from '../model/open-model.ts';
import { openReplacement, replacementKey } from '../model/open-replacement.ts';
import type { ProviderChoice } from '../runtime/providers.ts';
import { type PromptTokenizer, tokenNamer } from '../tokenizer/index.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { Intervener, type InterventionResult } from './interventions.ts';
import type { FeatureChange, InterventionOutcome, InterventionSpec } from './spec.ts';

/** Closed-loop feature changes kept per outcome (largest first). */
export const MAX_FEATURE_CHANGES = 500;

export interface InterventionRequest {
  checkpointDir: string;
  transcoderDir: string;
  /** The trace's token ids (BOS included). */
  tokenIds: number[];
  provider: ProviderChoice;
  spec: InterventionSpec;
  /** The trace's logit targets, reported in `logitChanges` (and always among the predictions). */
  trackTokens?: number[];
}

export interface InterventionRun {
  signal?: AbortSignal;
  onProgress?: (p: TraceProgress) => void;
}

export function featureNodeId(layer: number, feature: number, position: number): string {
  return `${layer}_${feature}_${position}`;
}

/** The engine's result as the stored outcome (token strings added, `inGraph` left false). */
export function toOutcome(
  spec: InterventionSpec,
  r: InterventionResult,
  tokenToString: (id: number) => string,
  timingsMs: Record<string, number>,
): InterventionOutcome {
  const edited = new Set(spec.edits.map((e) => featureNodeId(e.layer, e.feature, e.position)));
  const featureChanges: FeatureChange[] = [
    ...r.activationChanges.slice(0, MAX_FEATURE_CHANGES).map((c) => ({ c, quantity: 'activation' as const })),
    ...(r.inputChanges ?? []).slice(0, MAX_FEATURE_CHANGES).map((c) => ({ c, quantity: 'input' as const })),
  ].map(({ c, quantity }) => {
    const nodeId = featureNodeId(c.layer, c.feature, c.position);
    return { nodeId, ...c, quantity, inGraph: false, edited: edited.has(nodeId) };
  });
  return {
    loop: r.loop,
    predictions: r.changes.map((c) => ({
      tokenId: c.tokenId,
      token: tokenToString(c.tokenId),
      probBefore: c.probBefore,
      probAfter: c.probAfter,
      logitBefore: c.logitBefore,
      logitAfter: c.logitAfter,
    })),
    topBefore: r.before.map((p) => p.tokenId),
    topAfter: r.after.map((p) => p.tokenId),
    featureChanges,
    logitChanges: (r.targetLogitChanges ?? []).map((c) => ({ ...c, token: tokenToString(c.tokenId) })),
    generated: r.generated.map((tokenId) => ({ tokenId, token: tokenToString(tokenId) })),
    timingsMs,
  };
}

/** The last model's Intervener (compiled graphs, sessions), kept for the next intervention. */
export interface LoadedIntervener {
  key: string;
  model: OpenedModel;
  set: TranscoderSet;
  intervener: Intervener;
  tokenizer: PromptTokenizer | null;
}

export interface IntervenerOptions {
  cacheRoot?: string;
  threads?: number;
  onWarning?: (m: string) => void;
}

/** Opens an Intervener for `req`'s model, or returns `previous` when it is that model's (else closes it). */
async function openIntervener(
  previous: LoadedIntervener | null,
  req: { checkpointDir: string; transcoderDir: string; provider: ProviderChoice },
  opts: IntervenerOptions,
): Promise<LoadedIntervener> {
  const key = replacementKey(req.checkpointDir, req.transcoderDir, { ...opts, provider: req.provider });
  if (previous?.key === key) return previous;
  await closeIntervener(previous);
  return openReplacement(req.checkpointDir, req.transcoderDir, async ({ model, set, tokenizer }) => {
    const intervener = await Intervener.create(model, set, {
      provider: req.provider,
      cacheRoot: opts.cacheRoot,
      threads: opts.threads,
      onWarning: opts.onWarning,
    });
    return { key, model, set, intervener, tokenizer };
  });
}

export async function closeIntervener(l: LoadedIntervener | null): Promise<void> {
  if (!l) return;
  await l.intervener.close().catch(() => undefined);
  l.set.close();
  l.model.close();
}

/**
 * Loads (or reuses `previous`) and runs one intervention. `keep` is told which Intervener to
 * hold for the next call: null while loading (a failed load leaves nothing half-closed to
 * reuse), then the loaded one, before the run itself (which may be cancelled).
 */
export async function runInterventionReusing(
  previous: LoadedIntervener | null,
  keep: (loaded: LoadedIntervener | null) => void,
  req: InterventionRequest,
  opts: IntervenerOptions,
  run: InterventionRun,
): Promise<InterventionOutcome> {
  run.onProgress?.({ phase: 'load', done: 0, total: 1 });
  const started = performance.now();
  keep(null);
  const loaded = await openIntervener(previous, req, opts);
  keep(loaded);
  const loadMs = performance.now() - started;
  run.onProgress?.({ phase: 'load', done: 1, total: 1 });
  if (run.signal?.aborted) throw new EngineError('cancelled', 'the intervention was cancelled');
  const out = await runIntervention(
    loaded.intervener,
    req.tokenIds,
    req.spec,
    tokenNamer(loaded.tokenizer),
    run,
    req.trackTokens,
  );
  out.timingsMs = { compile_and_load: loadMs, ...out.timingsMs };
  return out;
}

/** Runs the spec's edits on the prompt with a ready Intervener. */
export async function runIntervention(
  iv: Intervener,
  tokenIds: number[],
  spec: InterventionSpec,
  tokenToString: (id: number) => string,
  run: InterventionRun,
  trackTokens?: number[],
): Promise<InterventionOutcome> {
  const started = performance.now();
  const options = {
    top: spec.top,
    signal: run.signal,
    onProgress: run.onProgress,
    maxActivationChanges: MAX_FEATURE_CHANGES,
    trackTokens,
  };
  const r =
    spec.loop === 'open'
      ? await iv.openLoop(tokenIds, spec.edits, options)
      : await iv.closedLoopIntervention(tokenIds, spec.edits, {
          ...options,
          generate: spec.generate,
          freezeAttention: spec.freezeAttention,
        });
  return toOutcome(spec, r, tokenToString, { intervene: performance.now() - started });
}
