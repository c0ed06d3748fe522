/**
 * Interventions, the pure part: the draft (one row per edited feature and position) built from
 * pinned nodes or a supernode's members, its validation, the API input it becomes, the rows of
 * the before/after prediction table, and the graph highlight (which nodes rose or fell) that
 * scene.ts turns into colours. No Vue, no sigma.
 */

import { featureEdit } from '../../../electron/engine/intervene/spec.ts';
import type {
  FeatureEdit,
  GraphView,
  InterventionInput,
  InterventionMode,
  InterventionOutcome,
  NodeKind,
  ViewNode,
} from '../api/types.ts';

// ---- node ids

export interface ParsedNodeId {
  kind: NodeKind;
  layer: number;
  /** Feature index (feature), token id (token, logit), -1 (error). */
  index: number;
  position: number;
}

/**
 * What a graph JSON node id names: feature `{layer}_{index}_{pos}`, error `{layer}_-1_{pos}`,
 * embedding `E_{tokenId}_{pos}`, logit `{nLayers+1}_{tokenId}_{T-1}` (told from a feature by its
 * layer, hence `nLayers`). Null for anything else (supernode keys, malformed ids).
 */
export function parseNodeId(id: string, nLayers: number): ParsedNodeId | null {
  const tok = /^E_(\d+)_(\d+)$/.exec(id);
  if (tok) return { kind: 'token', layer: -1, index: Number(tok[1]), position: Number(tok[2]) };
  const m = /^(\d+)_(-1|\d+)_(\d+)$/.exec(id);
  if (!m) return null;
  const layer = Number(m[1]);
  const index = Number(m[2]);
  const position = Number(m[3]);
  if (layer >= nLayers) return { kind: 'logit', layer, index, position };
  if (index < 0) return { kind: 'error', layer, index, position };
  return { kind: 'feature', layer, index, position };
}

export const featureNodeId = (layer: number, feature: number, position: number) =>
  `${layer}_${feature}_${position}`;

// ---- the draft

export interface DraftRow {
  /** Unique within the draft. */
  key: string;
  /** The node the row came from. */
  nodeId: string;
  layer: number;
  feature: number;
  /** The node's own position (where its activation was measured). */
  nodePosition: number;
  /** The prompt position edited (default: the node's own). */
  position: number;
  mode: InterventionMode;
  /** The activation (set) or factor (scale); null while the input is empty or for ablate. */
  value: number | null;
  /** The node's activation at its own position (null when the view does not hold it). */
  activation: number | null;
  label: string;
}

export interface SkippedNode {
  id: string;
  kind: NodeKind | 'unknown';
  reason: string;
}

const SKIP_REASON: Record<Exclude<NodeKind, 'feature'> | 'unknown', string> = {
  error: 'an error node (the transcoder’s reconstruction error) is not a feature',
  token: 'a token embedding is an input, not a feature',
  logit: 'a logit is an output: intervene on the features that drive it',
  unknown: 'not a node of this graph',
};

let rowSeq = 0;
const newKey = (nodeId: string) => `${nodeId}#${++rowSeq}`;

/** Rows for the feature nodes among `ids` (deduplicated); the others are skipped with a reason. */
export function draftRows(
  ids: readonly string[],
  view: Pick<GraphView, 'nodes' | 'nLayers'>,
): { rows: DraftRow[]; skipped: SkippedNode[] } {
  const byId = new Map<string, ViewNode>(view.nodes.map((n) => [n.id, n]));
  const rows: DraftRow[] = [];
  const skipped: SkippedNode[] = [];
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    const n = byId.get(id);
    const parsed = n
      ? { kind: n.kind, layer: n.layer, index: n.index, position: n.position }
      : parseNodeId(id, view.nLayers);
    if (parsed?.kind !== 'feature') {
      const kind = parsed?.kind ?? 'unknown';
      skipped.push({ id, kind, reason: SKIP_REASON[kind as keyof typeof SKIP_REASON] });
      continue;
    }
    rows.push({
      key: newKey(id),
      nodeId: id,
      layer: parsed.layer,
      feature: parsed.index,
      nodePosition: parsed.position,
      position: parsed.position,
      mode: 'ablate',
      value: null,
      activation: n?.activation ?? null,
      label: n?.label ?? '',
    });
  }
  return { rows, skipped };
}

/** Appends rows for nodes not in the draft yet (same feature at the same position). */
export function mergeRows(existing: readonly DraftRow[], added: readonly DraftRow[]): DraftRow[] {
  const have = new Set(existing.map((r) => featureNodeId(r.layer, r.feature, r.position)));
  return [...existing, ...added.filter((r) => !have.has(featureNodeId(r.layer, r.feature, r.position)))];
}

/** A copy of a row for another position (the next free one after it, else its own). */
export function duplicateRow(rows: readonly DraftRow[], key: string, nPositions: number): DraftRow[] {
  const i = rows.findIndex((r) => r.key === key);
  if (i < 0) return [...rows];
  const r = rows[i];
  const taken = new Set(
    rows.filter((o) => o.layer === r.layer && o.feature === r.feature).map((o) => o.position),
  );
  let position = r.position;
  for (let k = 1; k < nPositions; k++) {
    const p = 1 + ((r.position - 1 + k) % Math.max(1, nPositions - 1));
    if (!taken.has(p)) {
      position = p;
      break;
    }
  }
  const copy: DraftRow = { ...r, key: newKey(r.nodeId), position };
  return [...rows.slice(0, i + 1), copy, ...rows.slice(i + 1)];
}

/** The value a row gets when its mode changes (keeps what the user typed when it still fits). */
export function defaultValue(row: Pick<DraftRow, 'activation' | 'value' | 'mode'>, mode: InterventionMode) {
  if (mode === 'ablate') return null;
  if (row.mode === mode && row.value !== null) return row.value;
  if (mode === 'scale') return 2;
  const a = row.activation ?? 1;
  return Math.round(a * 2 * 1000) / 1000;
}

/** Why a row cannot run, or null. `nPositions` = prompt length T (BOS included). */
export function rowProblem(row: DraftRow, nPositions: number): string | null {
  if (!Number.isInteger(row.position) || row.position < 1 || row.position >= nPositions)
    return `position must be in 1…${nPositions - 1} (0 is BOS)`;
  if (row.mode !== 'ablate') {
    if (row.value === null || !Number.isFinite(row.value))
      return row.mode === 'scale' ? 'needs a factor' : 'needs an activation value';
    if (Math.abs(row.value) > VALUE_MAX) return `must be within ±${VALUE_MAX}`;
  }
  return null;
}

export interface DraftOptions {
  loop: 'open' | 'closed';
  freezeAttention: boolean;
  generate: number;
  top: number;
  label: string;
}

/** The API's bounds (electron/api/schema.ts). */
export const GENERATE_MAX = 256;
export const TOP_MAX = 100;
export const VALUE_MAX = 1e6;
export const EDITS_MAX = 256;

/** Every problem of the draft: per row (by key) and overall. */
export function draftProblems(
  rows: readonly DraftRow[],
  opts: DraftOptions,
  nPositions: number,
): { rows: Record<string, string>; general: string[] } {
  const out: Record<string, string> = {};
  const general: string[] = [];
  if (rows.length === 0) general.push('Add at least one feature (pin feature nodes, or use a supernode).');
  const seen = new Map<string, string>();
  for (const r of rows) {
    const p = rowProblem(r, nPositions);
    if (p) {
      out[r.key] = p;
      continue;
    }
    const k = featureNodeId(r.layer, r.feature, r.position);
    if (seen.has(k)) out[r.key] = `edits ${k} twice`;
    else seen.set(k, r.key);
  }
  if (!Number.isInteger(opts.top) || opts.top < 1 || opts.top > TOP_MAX)
    general.push(`Top K must be a whole number in 1…${TOP_MAX}.`);
  if (rows.length > EDITS_MAX) general.push(`At most ${EDITS_MAX} edits at once.`);
  if (opts.loop === 'closed') {
    if (!Number.isInteger(opts.generate) || opts.generate < 0 || opts.generate > GENERATE_MAX)
      general.push(`Generate must be a whole number in 0…${GENERATE_MAX}.`);
    else if (opts.freezeAttention && opts.generate > 0)
      general.push('A continuation cannot keep attention frozen (new positions have no prompt pattern).');
  }
  return { rows: out, general };
}

/** The edits of validated rows (a set or scale row has its value). */
export function editsOf(rows: readonly DraftRow[]): FeatureEdit[] {
  return rows.map((r) =>
    featureEdit({ layer: r.layer, feature: r.feature, position: r.position }, r.mode, r.value ?? undefined),
  );
}

/** The API request of a draft (closed-loop-only options are left out of open-loop requests). */
export function interventionInput(
  traceId: number,
  rows: readonly DraftRow[],
  opts: DraftOptions,
): InterventionInput {
  const input: InterventionInput = { traceId, edits: editsOf(rows), loop: opts.loop, top: opts.top };
  if (opts.loop === 'closed') {
    input.freezeAttention = opts.freezeAttention;
    input.generate = opts.generate;
  }
  const label = opts.label.trim();
  if (label) input.label = label;
  return input;
}

/** "ablate", "×0.5", "= 3.2": a row's edit in a few characters. */
export function editText(e: Pick<FeatureEdit, 'mode' | 'value'>): string {
  if (e.mode === 'ablate') return 'ablate';
  if (e.mode === 'scale') return `×${e.value}`;
  return `= ${e.value}`;
}

// ---- the prediction table

export interface PredictionRow {
  tokenId: number;
  token: string;
  probBefore: number;
  probAfter: number;
  /** probAfter − probBefore. */
  delta: number;
  logitDelta: number;
  /** 1-based rank in the top lists (null when outside). */
  rankBefore: number | null;
  rankAfter: number | null;
  /** Bar lengths in [0, 1] relative to the largest probability of the table. */
  barBefore: number;
  barAfter: number;
  /** |delta| relative to the largest |delta| of the table, in [0, 1]. */
  barDelta: number;
}

export type PredictionSort = 'after' | 'before' | 'change';

export function predictionRows(
  outcome: InterventionOutcome,
  sort: PredictionSort = 'after',
): PredictionRow[] {
  const maxP = Math.max(1e-12, ...outcome.predictions.flatMap((p) => [p.probBefore, p.probAfter]));
  const maxD = Math.max(1e-12, ...outcome.predictions.map((p) => Math.abs(p.probAfter - p.probBefore)));
  const rank = (list: number[], id: number) => {
    const i = list.indexOf(id);
    return i < 0 ? null : i + 1;
  };
  const rows = outcome.predictions.map((p) => ({
    tokenId: p.tokenId,
    token: p.token,
    probBefore: p.probBefore,
    probAfter: p.probAfter,
    delta: p.probAfter - p.probBefore,
    logitDelta: p.logitAfter - p.logitBefore,
    rankBefore: rank(outcome.topBefore, p.tokenId),
    rankAfter: rank(outcome.topAfter, p.tokenId),
    barBefore: p.probBefore / maxP,
    barAfter: p.probAfter / maxP,
    barDelta: Math.abs(p.probAfter - p.probBefore) / maxD,
  }));
  const key: Record<PredictionSort, (r: PredictionRow) => number> = {
    after: (r) => r.probAfter,
    before: (r) => r.probBefore,
    change: (r) => Math.abs(r.delta),
  };
  return rows.sort((a, b) => key[sort](b) - key[sort](a) || b.probAfter - a.probAfter);
}

// ---- the graph highlight

export interface NodeChange {
  direction: 'rose' | 'fell' | 'same';
  /** |after − before| / max(|before|, |after|), in [0, 1]. */
  intensity: number;
  before: number;
  after: number;
  /** One of the intervention's own edits. */
  edited: boolean;
  /**
   * What is compared: a feature's activation, its input (pre-activation: the open loop, where
   * activations stay frozen), a logit's probability, or (logit targets outside the top lists)
   * its demeaned logit.
   */
  quantity: 'activation' | 'input' | 'probability' | 'logit';
}

/** Node id → change; nodes absent from it did not change (or were not reported). */
export type Highlight = ReadonlyMap<string, NodeChange>;

/** Below this relative change a node counts as unchanged. */
export const SAME_BELOW = 0.01;

export function relativeChange(before: number, after: number): number {
  const scale = Math.max(Math.abs(before), Math.abs(after));
  return scale > 1e-12 ? Math.min(1, Math.abs(after - before) / scale) : 0;
}

function change(
  before: number,
  after: number,
  edited: boolean,
  quantity: NodeChange['quantity'],
): NodeChange {
  const intensity = relativeChange(before, after);
  const direction = intensity < SAME_BELOW ? 'same' : after > before ? 'rose' : 'fell';
  return { direction, intensity, before, after, edited, quantity };
}

/**
 * The highlight of a result on a view: features by their activation change (open loop: by the
 * direct change of their input; keyed by node id, edited ones flagged), logit nodes by their probability change (matched by token id; by their demeaned
 * logit change when they are outside the top lists). The edits themselves are marked even where the outcome lists no feature changes (open loop):
 * before = the node's activation in the view, after = what the edit made of it.
 */
export function interventionHighlight(
  outcome: InterventionOutcome,
  view: Pick<GraphView, 'nodes'>,
  edits: readonly FeatureEdit[] = [],
): Map<string, NodeChange> {
  const out = new Map<string, NodeChange>();
  for (const c of outcome.featureChanges)
    out.set(c.nodeId, change(c.before, c.after, c.edited, c.quantity ?? 'activation'));
  const byId = new Map(view.nodes.map((n) => [n.id, n]));
  const byToken = new Map(outcome.predictions.map((p) => [p.tokenId, p]));
  for (const e of edits) {
    const id = featureNodeId(e.layer, e.feature, e.position);
    const prev = out.get(id);
    if (prev) {
      prev.edited = true;
      continue;
    }
    const before = byId.get(id)?.activation ?? 0;
    const after = e.mode === 'ablate' ? 0 : e.mode === 'scale' ? before * (e.value ?? 1) : (e.value ?? 0);
    out.set(id, change(before, after, true, 'activation'));
  }
  const logits = new Map((outcome.logitChanges ?? []).map((c) => [c.tokenId, c]));
  for (const n of view.nodes) {
    if (n.kind !== 'logit') continue;
    const p = byToken.get(n.index);
    const l = logits.get(n.index);
    if (p) out.set(n.id, change(p.probBefore, p.probAfter, false, 'probability'));
    else if (l) out.set(n.id, change(l.before, l.after, false, 'logit'));
  }
  return out;
}

/** Counts for the legend: of the nodes `ids` (those drawn), how many rose, fell, or were edited. */
export function highlightCounts(
  hl: Highlight,
  ids: Iterable<string>,
): { rose: number; fell: number; edited: number } {
  let rose = 0;
  let fell = 0;
  let edited = 0;
  for (const id of ids) {
    const c = hl.get(id);
    if (!c) continue;
    if (c.edited) edited++;
    else if (c.direction === 'rose') rose++;
    else if (c.direction === 'fell') fell++;
  }
  return { rose, fell, edited };
}
