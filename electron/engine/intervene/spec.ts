/**
 * Interventions on a traced prompt, as the API, the store, the jobs and the engine share them:
 * the edits asked for and the outcome reported. Types only, so the renderer may import them.
 */

export type InterventionMode = 'set' | 'scale' | 'ablate';

/** Which transcoder feature an edit changes, at which prompt position. */
export interface FeatureSite {
  layer: number;
  feature: number;
  /** Prompt position (1 … T−1; position 0 is BOS, where features are zeroed). */
  position: number;
}

/** One edit of one feature: set its activation to `value`, scale it by `value`, or ablate it (0). */
export type FeatureEdit =
  | (FeatureSite & { mode: 'set' | 'scale'; value: number })
  | (FeatureSite & { mode: 'ablate'; value?: undefined });

/**
 * What an intervention does. Open loop: attention, norms and every other feature frozen at the
 * prompt's values (direct effects: ablating one feature moves each logit target by −its edge).
 * Closed loop: everything downstream recomputed, transcoder activations included (optionally
 * with attention patterns frozen), and an optional greedy continuation.
 */
export interface InterventionSpec {
  loop: 'open' | 'closed';
  edits: FeatureEdit[];
  /** Closed loop only: keep every attention pattern at the prompt's values. */
  freezeAttention: boolean;
  /** Closed loop only: greedy tokens generated with the edits applied at the prompt positions. */
  generate: number;
  /** How many top next tokens to list before and after. */
  top: number;
}

export interface TokenPrediction {
  tokenId: number;
  token: string;
  probBefore: number;
  probAfter: number;
  logitBefore: number;
  logitAfter: number;
}

export interface LogitChange {
  tokenId: number;
  token: string;
  before: number;
  after: number;
  /** after − before, computed directly (more precise than the difference of the two). */
  delta: number;
}

export interface FeatureChange {
  /** Graph JSON node id `{layer}_{feature}_{position}`. */
  nodeId: string;
  layer: number;
  feature: number;
  position: number;
  /**
   * 'activation': the feature's activation (closed loop; the open loop's edited features).
   * 'input': its pre-activation (open loop: activations stay frozen, the edits change the
   * inputs of the features downstream directly, by what the graph's edges say).
   */
  quantity: 'activation' | 'input';
  before: number;
  after: number;
  /** Whether the trace's (unpruned) graph has this feature as a node. */
  inGraph: boolean;
  /** One of the intervention's own edits. */
  edited: boolean;
}

export interface InterventionOutcome {
  loop: 'open' | 'closed';
  /** The union of the top-`top` lists before and after, sorted by probability after. */
  predictions: TokenPrediction[];
  /** Token ids of the top-`top` list before and after (indices into nothing: ids). */
  topBefore: number[];
  topAfter: number[];
  /**
   * Closed loop: the features whose activation changed, the edited ones included (largest
   * change first, at most 500). Open loop: the edited features' activations, then the features
   * whose input the edits change directly (quantity 'input', at most 500); every activation but
   * the edited ones is held at its prompt value, which is what makes it match the graph's edges.
   */
  featureChanges: FeatureChange[];
  /**
   * The trace's logit targets: their demeaned pre-softcap logit (what a logit node of the graph
   * measures) before and after. In the open loop, ablating one feature moves each by −(its edge
   * from that feature).
   */
  logitChanges: LogitChange[];
  /** Closed loop with `generate`: the greedy continuation. */
  generated: Array<{ tokenId: number; token: string }>;
  timingsMs: Record<string, number>;
}

/** An edit from its parts; `value` is required for set and scale and ignored for ablate. */
export function featureEdit(site: FeatureSite, mode: InterventionMode, value?: number): FeatureEdit {
  if (mode === 'ablate') return { ...site, mode };
  if (value === undefined) throw new Error(`a ${mode} edit needs a value`);
  return { ...site, mode, value };
}
