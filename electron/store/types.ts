/** Records the store returns (plain data; times are Unix milliseconds). */
import type { TraceProgress, TraceSettings } from '../engine/attribution/defaults.ts';
import type { InterventionOutcome, InterventionSpec } from '../engine/intervene/spec.ts';

export type { TraceProgress, TraceSettings, TraceTarget } from '../engine/attribution/defaults.ts';
export type {
  FeatureChange,
  FeatureEdit,
  InterventionMode,
  InterventionOutcome,
  InterventionSpec,
  LogitChange,
  TokenPrediction,
} from '../engine/intervene/spec.ts';

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

export type InterventionStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

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
