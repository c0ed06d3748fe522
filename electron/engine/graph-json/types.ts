/**
 * Types of the circuit-tracer / Neuronpedia graph JSON (attribution.md §6).
 *
 * `GraphJson` is the wire form: exactly what `JSON.parse` of an exported file gives.
 * `GraphDocument` is the normalized form the app works with (export builds one, import returns
 * one): known fields typed, any other fields kept as validated JSON in `extra` (re-exported
 * after the known fields, keys sorted), links columnar with node indices.
 */
import type { NodeKind, ParsedNodeId } from './ids.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Fields this workbench adds under `metadata.workbench` (no clash with circuit-tracer / Neuronpedia). */
export interface WorkbenchMetadata {
  model_id: string | null;
  replacement_score: number | null;
  completeness_score: number | null;
}

export interface GraphMetadata {
  slug: string;
  scan: string;
  transcoder_list: string[];
  prompt_tokens: string[];
  prompt: string;
  node_threshold: number | null;
  schema_version: number;
  workbench: WorkbenchMetadata | null;
  /**
   * Other metadata fields, e.g. Neuronpedia's `info`, `generation_settings` and
   * `pruning_settings` ({node_threshold, edge_threshold}, which export writes).
   */
  extra: JsonObject;
}

export interface GraphQParams {
  pinnedIds: string[];
  /** Each group is [label, ...node ids]. */
  supernodes: string[][];
  linkType: string;
  clickedId: string;
  sg_pos: string;
  extra: JsonObject;
}

/** One node as written (field order = circuit-tracer's pydantic order). */
export interface GraphJsonNode {
  node_id: string;
  feature: number;
  layer: string;
  ctx_idx: number;
  feature_type: string;
  token_prob: number;
  is_target_logit: boolean;
  run_idx: number;
  reverse_ctx_idx: number;
  jsNodeId: string;
  clerp: string;
  influence: number | null;
  activation: number | null;
}

export const NODE_FIELDS = [
  'node_id',
  'feature',
  'layer',
  'ctx_idx',
  'feature_type',
  'token_prob',
  'is_target_logit',
  'run_idx',
  'reverse_ctx_idx',
  'jsNodeId',
  'clerp',
  'influence',
  'activation',
] as const satisfies ReadonlyArray<keyof GraphJsonNode>;

export interface GraphNode extends GraphJsonNode {
  /** Kind, layer, index and position read from node_id (not written). */
  readonly parsed: ParsedNodeId;
}

export interface GraphLinks {
  /** Indices into `nodes`. */
  source: Int32Array;
  target: Int32Array;
  /** The raw signed A[target, source], as float64 (exactly what is written). */
  weight: Float64Array;
}

export interface GraphDocument {
  metadata: GraphMetadata;
  qParams: GraphQParams;
  nodes: GraphNode[];
  links: GraphLinks;
  /** Top-level fields other than metadata / qParams / nodes / links. */
  extra: JsonObject;
}

export interface GraphJsonLink {
  source: string;
  target: string;
  weight: number;
}

export interface GraphJson {
  metadata: { [key: string]: unknown };
  qParams: { [key: string]: unknown };
  nodes: GraphJsonNode[];
  links: GraphJsonLink[];
  [key: string]: unknown;
}

export type { NodeKind, ParsedNodeId };
