/**
 * The one contract between a UI and the backend: every method (name → params → result) and
 * every event (name → payload). The WebSocket transport (server mode) and the Electron IPC
 * bridge (electron/app) carry the same methods; the desktop shell's own extras (menu commands,
 * the folder picker) live in electron/app/channels.ts. Types plus a few constants (API_VERSION,
 * EVENT_NAMES, the engine's trace defaults), so the renderer imports it without pulling in Node.
 *
 * Ids of graph nodes are graph JSON node ids (attribution.md §6): feature `{layer}_{index}_{pos}`,
 * error `{layer}_-1_{pos}`, embedding `E_{tokenId}_{pos}`, logit `{L+1}_{tokenId}_{T-1}`.
 */
import type { TraceProvider } from '../engine/attribution/defaults.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import type { GraphDiff, MergedEdge, MergedNode } from '../engine/graph-diff/types.ts';
import type { FeatureInfo } from '../store/features.ts';
import type {
  Annotations,
  FeatureChange,
  FeatureEdit,
  InterventionMode,
  InterventionOutcome,
  InterventionRecord,
  InterventionSpec,
  InterventionStatus,
  ModelRecord,
  ProjectRecord,
  Supernode,
  TokenPrediction,
  TraceProgress,
  TraceRecord,
  TraceSettings,
  TraceStatus,
  TraceTarget,
  TranscoderSetRecord,
  ViewSummary,
} from '../store/types.ts';

export { DEFAULT_TRACE_SETTINGS } from '../engine/attribution/defaults.ts';
export type { MergedEdge, MergedNode } from '../engine/graph-diff/types.ts';
export type {
  Annotations,
  FeatureChange,
  FeatureEdit,
  FeatureInfo,
  FeatureRecord,
  InterventionMode,
  InterventionOutcome,
  InterventionRecord,
  InterventionSpec,
  InterventionStatus,
  ModelRecord,
  ProjectRecord,
  Supernode,
  TokenPrediction,
  TraceProgress,
  TraceRecord,
  TraceSettings,
  TraceStatus,
  TraceTarget,
  TranscoderSetRecord,
  ViewSummary,
};

/** Bumped when a method or event changes incompatibly. */
export const API_VERSION = 1;

/** The dashboards of a transcoder set: how many are stored, and its latest dashboards job. */
export interface DashboardsStatus {
  transcoderSetId: number;
  /** Features of the set with a stored dashboard. */
  stored: number;
  /** Features in the set (layers × features per layer). */
  total: number;
  /** The corpus a job uses by default (the model's `corpus/` text file), or null when it has none. */
  defaultCorpus: string | null;
  job: {
    id: number;
    state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';
    corpus: string;
    progress: TraceProgress | null;
    error: { code: string; message: string } | null;
  } | null;
}

export type NodeKind = 'feature' | 'error' | 'token' | 'logit';

/** One node of a pruned view. */
export interface ViewNode {
  /** Graph JSON node id (stable across re-pruning). */
  id: string;
  kind: NodeKind;
  /** Transcoder layer (feature, error); -1 for tokens; nLayers + 1 for logits. */
  layer: number;
  position: number;
  /** Feature index (feature), vocabulary id (token, logit), -1 (error). */
  index: number;
  activation: number | null;
  /** Cumulative influence share at the node's rank (lower = more important); null for logits. */
  influence: number | null;
  /** Logit probability; null for other kinds. */
  probability: number | null;
  /** Token string (token, logit); null for other kinds. */
  token: string | null;
  /** The label shown: the trace's own label for the node, else the feature's label, else ''. */
  label: string;
  /**
   * Features with a dashboard: a label made from it (top activating tokens, then the top
   * logit), shown when `label` is empty — what a researcher reads before anyone annotated.
   */
  autoLabel?: string;
}

/** A view's edges: source and target are indices into the view's nodes. */
export interface ViewEdges {
  source: ArrayLike<number>;
  target: ArrayLike<number>;
  weight: ArrayLike<number>;
}

/** ViewEdges as base64 strings of little-endian bytes: source, target Uint32; weight Float32. */
export interface PackedViewEdges {
  count: number;
  source: string;
  target: string;
  weight: string;
}

/**
 * A diff's merged edges packed (`graphs.diff` with `edges: 'packed'`): endpoints as Uint32 indices
 * into merged.nodes, each side's weight as Float32 (NaN: the edge is not in that graph), each
 * base64 of its little-endian bytes.
 */
export interface PackedMergedEdges {
  count: number;
  source: string;
  target: string;
  weightA: string;
  weightB: string;
}

/** A pruned graph as the UI draws it. Edge endpoints are indices into `nodes`. */
export interface GraphView {
  traceId: number;
  nodeThreshold: number;
  edgeThreshold: number;
  /** Node ids exempt from pruning (the trace's pins, when requested). */
  pinned: string[];
  nLayers: number;
  nPositions: number;
  promptTokens: string[];
  /** Nodes of the unpruned graph. */
  unprunedNodes: number;
  nodes: ViewNode[];
  /**
   * Edges by index into `nodes`, as parallel arrays. Empty when `packedEdges` is present: the
   * client decodes those into typed arrays here (electron/api/packed-edges.ts decodeViewEdges).
   */
  edges: ViewEdges;
  /** The edges packed (base64 of little-endian Uint32 / Float32 arrays), when asked with `edges: 'packed'`. */
  packedEdges?: PackedViewEdges;
  /** Null when unknown (an imported file without them). */
  replacementScore: number | null;
  completenessScore: number | null;
  /** True when the view was already stored; false when it was pruned for this request. */
  cached: boolean;
  /** Present for imported graphs, which have no adjacency outside their stored view. */
  imported?: boolean;
}

/** Attribution settings a caller may set; absent fields take the defaults. */
export interface TraceSettingsInput {
  maxNLogits?: number;
  desiredLogitProb?: number;
  /**
   * Feature rows, most influential first. Absent or null: the default (7500, which bounds
   * memory); above the number of active features: all of them.
   */
  maxFeatureNodes?: number | null;
  batchSize?: number;
  nodeThreshold?: number;
  edgeThreshold?: number;
  provider?: TraceProvider;
  /**
   * Attribution targets in place of the top logits (a token, a weighted combination of tokens,
   * or a direction of d_model numbers); null: the top logits. Re-trace keeps them unless given.
   */
  targets?: TraceTarget[] | null;
}

/** A model's tokens for choosing targets: vocabulary matches and the prompt's top next tokens. */
export interface ModelTokens {
  /** Tokens whose string contains the query (case-insensitive), shortest first. */
  matches: Array<{ id: number; token: string }>;
  /** The top next tokens after `prompt` (softmax of the final logits); null without a prompt. */
  top: Array<{ id: number; token: string; prob: number }> | null;
}

/** An intervention request; absent fields take the defaults (closed loop, top 10, no continuation). */
export interface InterventionInput {
  traceId: number;
  edits: FeatureEdit[];
  loop?: 'open' | 'closed';
  freezeAttention?: boolean;
  generate?: number;
  top?: number;
  /** Shown in the list; default: a description of the edits. */
  label?: string;
}

/** One side of `graphs.diff`: a trace at its thresholds (default: the trace's own). */
export interface DiffSide {
  traceId: number;
  nodeThreshold?: number;
  edgeThreshold?: number;
}

/** The graph diff (engine/graph-diff) of two traces, with what each side was. */
export interface TraceDiff extends GraphDiff {
  /** With `edges: 'packed'`, `edges` is empty and `packedEdges` holds them. */
  merged?: { nodes: MergedNode[]; edges: MergedEdge[]; packedEdges?: PackedMergedEdges };
  traces: Record<
    'a' | 'b',
    { traceId: number; prompt: string; nodeThreshold: number; edgeThreshold: number }
  >;
  nLayers: number;
}

export interface TraceDetail extends TraceRecord {
  views: ViewSummary[];
}

export interface ServerInfo {
  app: 'circuit-workbench';
  apiVersion: number;
  schemaVersion: number;
  dataDir: string;
}

interface Method<P, R> {
  params: P;
  result: R;
}

type Empty = Record<string, never>;

export interface ApiMethods {
  'server.info': Method<Empty, ServerInfo>;

  'projects.list': Method<Empty, ProjectRecord[]>;
  'projects.create': Method<{ name: string; description?: string }, ProjectRecord>;
  'projects.update': Method<{ id: number; name?: string; description?: string }, ProjectRecord>;
  /** Deletes the project and every trace in it. */
  'projects.delete': Method<{ id: number }, { id: number }>;

  'models.list': Method<Empty, ModelRecord[]>;
  'models.get': Method<{ id: number }, ModelRecord>;
  /** Validates the two folders and registers them (also when invalid: the record says why). */
  'models.register': Method<{ checkpointDir: string; transcoderDir: string; name?: string }, ModelRecord>;
  /** Validates a registered model again (files may have changed). */
  'models.validate': Method<{ id: number }, ModelRecord>;
  'models.rename': Method<{ id: number; name: string }, ModelRecord>;
  'models.delete': Method<{ id: number }, { id: number }>;
  'models.transcoderSets': Method<Empty, TranscoderSetRecord[]>;
  /** Vocabulary search and the top next tokens of a prompt, to pick attribution targets. */
  'models.tokens': Method<{ modelId: number; query?: string; prompt?: string; limit?: number }, ModelTokens>;

  /** Queues a trace. Give `prompt` (tokenized with the model's tokenizer) or `tokenIds` (used as given). */
  'traces.start': Method<
    {
      modelId: number;
      prompt?: string;
      tokenIds?: number[];
      projectId?: number;
      settings?: TraceSettingsInput;
      tags?: string[];
      notes?: string;
    },
    TraceRecord
  >;
  'traces.get': Method<{ id: number }, TraceDetail>;
  /** Search: every given filter must match. */
  'traces.list': Method<
    {
      projectId?: number;
      query?: string;
      tags?: string[];
      modelId?: number;
      transcoderSetId?: number;
      status?: TraceStatus;
      /** Traces whose graph holds this feature. */
      feature?: { layer: number; index: number };
      deleted?: 'exclude' | 'include' | 'only';
      limit?: number;
      offset?: number;
    },
    { traces: TraceRecord[]; total: number }
  >;
  /** Cancels a queued or running trace. */
  'traces.cancel': Method<{ id: number }, TraceRecord>;
  /** Queues a new trace of the same model and prompt with changed settings. */
  'traces.retrace': Method<{ id: number; settings?: TraceSettingsInput; projectId?: number }, TraceRecord>;
  /** To the trash (undo with traces.restore), or for good with `permanent`. */
  'traces.delete': Method<{ id: number; permanent?: boolean }, { id: number; permanent: boolean }>;
  'traces.restore': Method<{ id: number }, TraceRecord>;
  /**
   * Copies a finished trace (graph, stored views, annotations, tags, notes) into a new trace,
   * e.g. to annotate it another way or file it in another project; nothing is recomputed.
   */
  'traces.duplicate': Method<{ id: number; projectId?: number }, TraceRecord>;
  'traces.update': Method<{ id: number; notes?: string; projectId?: number }, TraceRecord>;
  'traces.tag': Method<{ id: number; add?: string[]; remove?: string[] }, TraceRecord>;
  'traces.tags': Method<Empty, Array<{ tag: string; count: number }>>;

  /**
   * The pruned view at these thresholds (default: the trace's own). Served from the store when
   * it holds that view, otherwise re-pruned from the unpruned adjacency and stored.
   */
  'graphs.view': Method<
    {
      traceId: number;
      nodeThreshold?: number;
      edgeThreshold?: number;
      usePins?: boolean;
      /** 'packed': the edges come as `packedEdges` (what the renderer asks for); default 'arrays'. */
      edges?: 'arrays' | 'packed';
    },
    GraphView
  >;
  /** Re-prunes (if not stored yet) without sending the view back. */
  'graphs.prune': Method<
    { traceId: number; nodeThreshold: number; edgeThreshold: number; usePins?: boolean },
    ViewSummary
  >;
  'graphs.views': Method<{ traceId: number }, ViewSummary[]>;
  /** circuit-tracer / Neuronpedia graph JSON of a pruned view, with labels, pins and supernodes. */
  'graphs.exportJson': Method<
    { traceId: number; nodeThreshold?: number; edgeThreshold?: number; usePins?: boolean },
    { fileName: string; json: string }
  >;
  /**
   * Imports graph JSON (validated, size-bounded) as a new trace. `fileName` (the user's file,
   * its base name) is what errors name; without it they name "the imported JSON".
   */
  'graphs.importJson': Method<
    { json: string; fileName?: string; projectId?: number; tags?: string[] },
    { trace: TraceRecord; notes: string[] }
  >;
  /**
   * What differs between two traces of one model and transcoder set (their pruned views):
   * nodes and edges only in A, only in B, changed; `top` bounds the lists, `merged` adds every
   * node and edge of both with its status (the compare diff view draws it).
   */
  'graphs.diff': Method<
    {
      a: DiffSide;
      b: DiffSide;
      top?: number;
      merged?: boolean;
      /** 'packed': the merged graph's edges come as `merged.packedEdges` (what the renderer asks for). */
      edges?: 'objects' | 'packed';
    },
    TraceDiff
  >;
  /**
   * Every node id of a trace's graph before pruning (imported: the file's nodes), to tell
   * "not in this trace" from "pruned at these thresholds".
   */
  'graphs.nodeIds': Method<{ traceId: number }, { traceId: number; ids: string[] }>;

  'features.get': Method<{ transcoderSetId: number; layer: number; index: number }, FeatureInfo>;
  /** '' clears the label. Labels are shared by every graph of the transcoder set. */
  'features.setLabel': Method<
    { transcoderSetId: number; layer: number; index: number; label: string },
    FeatureInfo
  >;
  'features.search': Method<{ transcoderSetId: number; query: string; limit?: number }, FeatureInfo[]>;
  /** Stores dashboards (feature detail records) computed elsewhere. */
  'features.putDashboards': Method<{ transcoderSetId: number; records: FeatureRecord[] }, { stored: number }>;
  /**
   * Queues the dashboards of a transcoder set (its model over `corpus`, default: the text file in
   * the model's `corpus/` folder) as a job: `dashboards.updated` events report progress and the
   * end, when every card of the set has its dashboard. Returns the running job if one exists;
   * with `ifMissing`, queues nothing when the set has dashboards already.
   */
  'features.computeDashboards': Method<
    { transcoderSetId: number; corpus?: string; maxTokens?: number; ifMissing?: boolean },
    DashboardsStatus
  >;
  'features.dashboardsStatus': Method<{ transcoderSetId: number }, DashboardsStatus>;
  /** Cancels the set's queued or running dashboards job (a no-op when none). */
  'features.cancelDashboards': Method<{ transcoderSetId: number }, DashboardsStatus>;

  /**
   * Queues an intervention on a traced prompt (the trace's model and transcoders, its token
   * ids). It runs as a job (progress events, cancel) and its result is stored with the trace.
   */
  'interventions.start': Method<InterventionInput, InterventionRecord>;
  /** A trace's interventions, newest first. */
  'interventions.list': Method<{ traceId: number }, InterventionRecord[]>;
  'interventions.get': Method<{ id: number }, InterventionRecord>;
  /** Cancels a queued or running intervention. */
  'interventions.cancel': Method<{ id: number }, InterventionRecord>;
  'interventions.delete': Method<{ id: number }, { id: number; traceId: number }>;

  'annotations.get': Method<{ traceId: number }, Annotations>;
  /** Replaces the given fields. Node ids must be nodes of the trace's graph. */
  'annotations.update': Method<
    {
      traceId: number;
      pinned?: string[];
      supernodes?: Supernode[];
      layout?: Record<string, { x: number; y: number }>;
      labels?: Record<string, string>;
      notes?: Record<string, string>;
    },
    Annotations
  >;
}

export type MethodName = keyof ApiMethods;
export type Params<M extends MethodName> = ApiMethods[M]['params'];
export type Result<M extends MethodName> = ApiMethods[M]['result'];

export interface ApiEvents {
  /** A running trace advanced (phase, batch i/n, ETA). */
  'trace.progress': { traceId: number; progress: TraceProgress };
  /** A trace changed (status, tags, notes, graph saved). */
  'trace.updated': { trace: TraceRecord };
  'trace.deleted': { traceId: number; permanent: boolean };
  /** A running intervention advanced. */
  'intervention.progress': { interventionId: number; traceId: number; progress: TraceProgress };
  /** An intervention was queued, started, finished, failed, was cancelled or deleted (`deleted`). */
  'intervention.updated': { intervention: InterventionRecord; deleted?: boolean };
  /** A dashboards job was queued, advanced, finished (cards refetch), failed or was cancelled. */
  'dashboards.updated': DashboardsStatus;
  /** Something else in the library changed; refetch what shows it. */
  'library.changed': {
    entity: 'project' | 'model' | 'feature' | 'annotation' | 'view';
    id: number | string;
  };
}

export type EventName = keyof ApiEvents;

/** Every event, for transports that forward them all (completeness is checked below). */
export const EVENT_NAMES = [
  'trace.progress',
  'trace.updated',
  'trace.deleted',
  'intervention.progress',
  'intervention.updated',
  'dashboards.updated',
  'library.changed',
] as const satisfies readonly EventName[];
const _eventsComplete: [Exclude<EventName, (typeof EVENT_NAMES)[number]>] extends [never] ? true : never =
  true;
void _eventsComplete;

export type ApiErrorCode =
  | 'invalid_params' // the params do not fit the method's schema
  | 'unknown_method'
  | 'not_found' // a project, model, trace, … that does not exist
  | 'conflict' // the request contradicts the stored state
  | 'unsupported' // not possible for this object (e.g. re-pruning an imported graph)
  | 'engine' // the engine rejected the input (engineCode says how)
  | 'storage' // the library could not be read or written
  | 'unauthorized' // missing or wrong token (transport level)
  | 'unavailable' // the connection to the backend is closed
  | 'internal'; // a bug: the message says what happened

/** Errors as every transport delivers them. */
export interface ApiErrorData {
  code: ApiErrorCode;
  message: string;
  /** The parameter or field concerned, e.g. 'settings.nodeThreshold'. */
  field?: string;
  /** For code 'engine': the EngineError code ('shape', 'mismatch', 'argument', …). */
  engineCode?: string;
}

/** The surface a UI talks to, whatever the transport. */
export interface ApiClient {
  call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends EventName>(event: E, listener: (data: ApiEvents[E]) => void): () => void;
  close(): Promise<void> | void;
}

// ---- WebSocket wire protocol (JSON text frames)

export type ClientMessage = { type: 'call'; id: number; method: string; params?: unknown };

export type ServerMessage =
  | { type: 'hello'; apiVersion: number; app: 'circuit-workbench' }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number | null; error: ApiErrorData }
  | { type: 'event'; event: EventName; data: unknown };
