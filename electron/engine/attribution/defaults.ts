/**
 * The settings that decide a trace's graph and their defaults, shared by the engine, the jobs,
 * the CLI, the API contract and the UI. No imports, so the renderer bundles it as it is.
 */

/**
 * Feature rows computed when no cap is given (circuit-tracer's CLI default). It bounds the
 * memory of long prompts: the rows cost 4 bytes × (cap + logits) × columns, the adjacency
 * 4 bytes × N² with N = cap + errors + tokens + logits. A larger explicit value than the
 * number of active features means all of them.
 */
export const DEFAULT_MAX_FEATURE_NODES = 7500;

/** The execution providers a trace may ask for (`auto`: the fastest that starts, runtime/auto-provider.ts). */
export const TRACE_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'auto'] as const;
export type TraceProvider = (typeof TRACE_PROVIDERS)[number];

/**
 * An attribution target in place of the top logits (engine/attribution/target-spec.ts):
 * a token's demeaned logit, a weighted combination of tokens, or a direction (d_model numbers)
 * at the unembedding input; `weight` is its influence weight.
 */
export type TraceTarget =
  | { token: string | number; weight?: number }
  | { label: string; weights: Record<string, number>; weight?: number }
  | { label: string; vector: number[]; weight?: number };

/** Everything that decides a trace's graph (attribution.md §7). */
export interface TraceSettings {
  maxNLogits: number;
  desiredLogitProb: number;
  /** null: the default cap (traces stored before the cap existed meant all features). */
  maxFeatureNodes: number | null;
  batchSize: number;
  nodeThreshold: number;
  edgeThreshold: number;
  /** 'none' for an imported graph, which was not computed here. */
  provider: TraceProvider | 'none';
  /** The targets in place of the top logits; absent or null: the top logits. */
  targets?: TraceTarget[] | null;
}

export const DEFAULT_TRACE_SETTINGS: Readonly<TraceSettings> = Object.freeze({
  maxNLogits: 10,
  desiredLogitProb: 0.95,
  maxFeatureNodes: DEFAULT_MAX_FEATURE_NODES,
  batchSize: 256,
  nodeThreshold: 0.8,
  edgeThreshold: 0.98,
  provider: 'cpu',
});

/** Settings with the given fields replaced (undefined keeps the base's); the cap is never left null. */
export function mergeTraceSettings(
  base: Readonly<TraceSettings>,
  changes: { [K in keyof TraceSettings]?: TraceSettings[K] | undefined } | undefined,
): TraceSettings {
  const s: TraceSettings = { ...base };
  if (changes)
    for (const [k, v] of Object.entries(changes))
      if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
  s.maxFeatureNodes ??= DEFAULT_MAX_FEATURE_NODES;
  return s;
}

/** Work progress as every long job reports it: a phase, a count, and an estimate when known. */
export interface TraceProgress {
  phase: string;
  done: number;
  total: number;
  etaSeconds?: number;
}
