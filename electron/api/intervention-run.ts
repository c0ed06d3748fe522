/**
 * One intervention, from a stored spec to a stored outcome: shared by the in-process compute
 * backend and the job pool's `intervene` worker, so both give the same record.
 */
import type { Intervener, InterventionResult } from '../engine/intervene/interventions.ts';
import type { FeatureChange, InterventionOutcome, InterventionSpec, TraceProgress } from '../store/types.ts';

/** Closed-loop feature changes kept per outcome (largest first). */
export const MAX_FEATURE_CHANGES = 500;

export interface InterventionRequest {
  checkpointDir: string;
  transcoderDir: string;
  /** The trace's token ids (BOS included). */
  tokenIds: number[];
  provider: string;
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
