/**
 * Inputs and outputs of the graph diff. `DiffGraph` is the small common form both callers
 * build: the CLI from graph JSON files (input.ts), the API from stored pruned views.
 * Output field names are snake_case, as in the graph JSON the diff is printed next to.
 */
import type { NodeKind } from '../graph-json/ids.ts';
import type { Alignment, Substitution } from './align.ts';

export interface DiffGraphNode {
  id: string;
  kind: NodeKind;
  /** Feature / error: transcoder layer; token: -1; logit: nLayers + 1. */
  layer: number;
  /** Feature index; vocabulary id of a token or logit; -1 for errors. */
  index: number;
  position: number;
  activation: number | null;
  influence: number | null;
  /** Logit probability; null for other kinds. */
  probability: number | null;
  /** What a person reads: the token of a token or logit node, else the label (or ''). */
  label: string;
  /**
   * Logits only: what a logit is matched by across graphs (input.ts `logitKeyOf`: the token
   * string, or a custom target's label); absent: `token:{index}`.
   */
  logitKey?: string;
}

export interface DiffGraph {
  /** Named in errors ("A.json", "trace 12"). */
  name: string;
  /**
   * What must agree for a diff to mean anything (model, transcoder set), by the field that
   * holds it, e.g. {"metadata.scan": "gemma2-demo", "metadata.transcoder_list": "[\"clt\"]"}.
   */
  identity: Record<string, string>;
  promptTokens: string[];
  nodes: DiffGraphNode[];
  /** Endpoints are indices into `nodes`; weight is the signed A[target, source]. */
  edges: { source: ArrayLike<number>; target: ArrayLike<number>; weight: ArrayLike<number> };
}

export interface DiffOptions {
  /** Longest lists returned (nodes only_a / only_b / changed, edges changed); default all. */
  top?: number;
  /** Values closer than this count as equal (default 0: exact). */
  tolerance?: number;
  /** Also return the merged graph (every node and edge of both, with its status). */
  merged?: boolean;
}

export interface NodeSide {
  id: string;
  kind: NodeKind;
  layer: number;
  /** Feature index, vocabulary id (token, logit) or -1 (error). */
  index: number;
  position: number;
  label: string;
  activation: number | null;
  influence: number | null;
  token_prob: number | null;
}

export interface NodeChange {
  /** The match key (kind, layer, index and aligned column). */
  key: string;
  kind: NodeKind;
  layer: number;
  index_a: number;
  index_b: number;
  id_a: string;
  id_b: string;
  position_a: number;
  position_b: number;
  label_a: string;
  label_b: string;
  activation_a: number | null;
  activation_b: number | null;
  influence_a: number | null;
  influence_b: number | null;
  token_prob_a: number | null;
  token_prob_b: number | null;
  /**
   * Change of the kind's main value, B − A: activation (feature), probability (logit), or
   * importance for errors and tokens (influence_a − influence_b: influence is a cumulative share,
   * lower = more important, so a positive change means more important in B). 0 when that value
   * is absent on a side; the list is sorted by its size.
   */
  change: number;
}

export interface EdgeChange {
  source_a: string;
  target_a: string;
  source_b: string;
  target_b: string;
  weight_a: number;
  weight_b: number;
  /** weight_b − weight_a; the list is sorted by its size. */
  delta: number;
}

export type MergedStatus = 'only_a' | 'only_b' | 'up' | 'down' | 'same';

export interface MergedNode {
  key: string;
  kind: NodeKind;
  layer: number;
  /** Aligned column (see alignment.columns). */
  column: number;
  a: NodeSide | null;
  b: NodeSide | null;
  status: MergedStatus;
  /** As NodeChange.change (0 for only_a / only_b). */
  change: number;
}

export interface MergedEdge {
  /** Indices into merged.nodes. */
  source: number;
  target: number;
  weight_a: number | null;
  weight_b: number | null;
}

export interface GraphDiff {
  nodes: {
    only_a: NodeSide[];
    only_b: NodeSide[];
    changed: NodeChange[];
    /** Sizes of the full lists (before --top), and of the matched nodes with equal values. */
    totals: { only_a: number; only_b: number; changed: number; unchanged: number };
  };
  edges: {
    only_a: number;
    only_b: number;
    changed: EdgeChange[];
    totals: { changed: number; unchanged: number };
  };
  alignment: {
    method: Alignment['method'];
    columns: Alignment['columns'];
    substitutions: Substitution[];
  };
  prompt_tokens: { a: string[]; b: string[] };
  merged?: { nodes: MergedNode[]; edges: MergedEdge[] };
}
