/** Records the store returns (plain data; times are Unix milliseconds). */

export type TraceStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export const TRACE_STATUSES: readonly TraceStatus[] = ['queued', 'running', 'done', 'failed', 'cancelled'];

export interface ProjectRecord {
  id: number;
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
  traceCount: number;
}

export interface TranscoderSetRecord {
  id: number;
  contentHash: string;
  dir: string;
  kind: string;
  nLayers: number;
  dModel: number;
  dTranscoder: number;
  createdAt: number;
}

export interface ValidationProblem {
  code: string;
  message: string;
  file?: string;
  tensor?: string;
  field?: string;
}

export interface ModelValidation {
  valid: boolean;
  problems: ValidationProblem[];
  /** What was read, for display (family, sizes, hooks); null where the folder was unreadable. */
  model: Record<string, unknown> | null;
  transcoders: Record<string, unknown> | null;
}

export interface ModelRecord {
  id: number;
  name: string;
  checkpointDir: string;
  transcoderDir: string;
  transcoderSetId: number | null;
  contentHash: string | null;
  family: string | null;
  nLayers: number | null;
  valid: boolean;
  validation: ModelValidation;
  createdAt: number;
  validatedAt: number;
}

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
  maxFeatureNodes: number | null;
  batchSize: number;
  nodeThreshold: number;
  edgeThreshold: number;
  provider: string;
  /** The targets in place of the top logits; absent or null: the top logits. */
  targets?: TraceTarget[] | null;
}

export interface TraceProgress {
  phase: string;
  done: number;
  total: number;
  etaSeconds?: number;
}

export interface TraceError {
  code: string;
  message: string;
}

export interface GraphSummary {
  nLayers: number;
  nPositions: number;
  nFeatures: number;
  nLogits: number;
  nNodes: number;
  nnz: number;
  sidecarBytes: number;
}

export interface TraceRecord {
  id: number;
  projectId: number;
  modelId: number | null;
  transcoderSetId: number | null;
  source: 'trace' | 'import';
  prompt: string;
  tokenIds: number[] | null;
  settings: TraceSettings;
  status: TraceStatus;
  progress: TraceProgress | null;
  timings: Record<string, number> | null;
  error: TraceError | null;
  notes: string;
  tags: string[];
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Set while the trace is in the trash (deleted, not yet purged). */
  deletedAt: number | null;
  graph: GraphSummary | null;
}

export interface ViewSummary {
  id: number;
  nodeThreshold: number;
  edgeThreshold: number;
  pinned: string;
  isDefault: boolean;
  nNodes: number;
  nEdges: number;
  /** Null when unknown (imported graphs). */
  replacementScore: number | null;
  completenessScore: number | null;
  createdAt: number;
  lastUsedAt: number;
}

export interface Supernode {
  label: string;
  nodeIds: string[];
}

export interface Annotations {
  traceId: number;
  /** Graph JSON node ids. */
  pinned: string[];
  supernodes: Supernode[];
  /** Subgraph layout: node id (or `supernode:<index>`) → position. */
  layout: Record<string, { x: number; y: number }>;
  /** Per-trace labels (errors, tokens, imported clerps); feature labels live with the set. */
  labels: Record<string, string>;
  notes: Record<string, string>;
  updatedAt: number | null;
}

// ---- interventions (steering and ablating features of a traced prompt)

export type InterventionMode = 'set' | 'scale' | 'ablate';

/** One edit of one transcoder feature at one prompt position. */
export interface FeatureEdit {
  layer: number;
  feature: number;
  /** Prompt position (1 … T−1; position 0 is BOS, where features are zeroed). */
  position: number;
  mode: InterventionMode;
  /** The activation to set (set) or the factor (scale); absent for ablate. */
  value?: number;
}

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

export type InterventionStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

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

export interface InterventionRecord {
  id: number;
  traceId: number;
  /** A short description, e.g. "ablate 2_117_5, scale 3_40_7 ×2". */
  label: string;
  spec: InterventionSpec;
  status: InterventionStatus;
  progress: TraceProgress | null;
  error: TraceError | null;
  result: InterventionOutcome | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}
