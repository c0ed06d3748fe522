/**
 * Graph JSON (circuit-tracer / Neuronpedia) in and out of the library.
 *
 * Export: a stored pruned view + the trace's labels, pins, supernodes and node notes (qParams
 * `nodeNotes`: node id → note, beside Neuronpedia's pinnedIds and supernodes), through the
 * engine's exporter; import reads the notes back. Import: the validated document becomes a node table (features, every error, every
 * token, logits), a sparse adjacency holding exactly the file's links (weights as float32, as
 * the engine computes them) and one pruned view holding every node of the file with its
 * influence. There is no unpruned adjacency behind an imported graph, so it is never re-pruned.
 */
import type { AttributionNodes, RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import { buildGraphDocument, stringifyGraphDocument } from '../engine/graph-json/export.ts';
import { embeddingNodeId, errorNodeId, featureNodeId, logitNodeId } from '../engine/graph-json/ids.ts';
import type { ImportedGraph } from '../engine/graph-json/import.ts';
import type { JsonObject } from '../engine/graph-json/types.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import type { CsrAdjacency } from '../store/graph-file.ts';
import type { Supernode } from '../store/types.ts';
import { ApiError } from './errors.ts';

/** A file-name slug of a prompt: "the-capital-of-texas-is", at most 60 characters. */
export function slugify(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'graph'
  );
}

/** The name import errors give the file: the user's base name (no folders), or a neutral one. */
export function importFileName(fileName: string | undefined): string {
  const base = fileName?.split(/[\\/]/).pop()?.trim();
  return base ? base : 'the imported JSON';
}

export interface ExportInput {
  nodes: AttributionNodes;
  pruned: PrunedGraph;
  /** node id → clerp (feature labels and the trace's own labels). */
  labels: ReadonlyMap<string, string>;
  pinned: string[];
  supernodes: Supernode[];
  /** node id → the researcher's note (written for the nodes of the view only). */
  notes?: Readonly<Record<string, string>>;
  slug: string;
  scan: string;
  prompt: string;
  modelId: string | null;
  transcoderList: string[];
  info: JsonObject;
}

export function exportGraphJsonText(x: ExportInput): string {
  // The exporter reads only the node tables of the raw graph.
  const raw: RawAttributionGraph = { nodes: x.nodes, adjacency: new Float32Array(0) };
  const missingInfluence: number[] = [];
  const influence = Float32Array.from(x.pruned.nodeInfluence, (v, q) => {
    if (Number.isFinite(v)) return v;
    missingInfluence.push(q);
    return 0;
  });
  const doc = buildGraphDocument({
    raw,
    pruned: { ...x.pruned, nodeInfluence: influence },
    labels: x.labels,
    qParams: {
      pinnedIds: x.pinned,
      supernodes: x.supernodes.map((s) => [s.label, ...s.nodeIds]),
      extra: nodeNotesOf(x),
    },
    metadata: {
      slug: x.slug,
      scan: x.scan,
      prompt: x.prompt,
      transcoderList: x.transcoderList,
      modelId: x.modelId,
      extra: { info: x.info },
    },
  });
  // Influences an imported file did not have stay absent (null) on the way out.
  for (const q of missingInfluence) if (doc.nodes[q].parsed.kind !== 'logit') doc.nodes[q].influence = null;
  return stringifyGraphDocument(doc);
}

/** The `nodeNotes` qParam: the non-empty notes of nodes the view keeps (none: no field). */
function nodeNotesOf(x: ExportInput): JsonObject {
  const notes = Object.entries(x.notes ?? {}).filter(([, v]) => v.trim() !== '');
  if (notes.length === 0) return {};
  const lay = nodeLayout(x.nodes);
  const kept = new Set<string>();
  for (const i of x.pruned.keptNodes) kept.add(rawNodeId(x.nodes, lay, i));
  const out: JsonObject = {};
  for (const [id, note] of notes.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    if (kept.has(id)) out[id] = note;
  return Object.keys(out).length ? { nodeNotes: out } : {};
}

/** The graph JSON id of raw node `i`. */
function rawNodeId(n: AttributionNodes, lay: ReturnType<typeof nodeLayout>, i: number): string {
  if (i < lay.errorOffset)
    return featureNodeId(n.features.layer[i], n.features.index[i], n.features.position[i]);
  if (i < lay.tokenOffset) {
    const e = i - lay.errorOffset;
    return errorNodeId(Math.floor(e / n.nPositions), e % n.nPositions);
  }
  if (i < lay.logitOffset) {
    const p = i - lay.tokenOffset;
    return embeddingNodeId(n.promptTokenIds[p], p);
  }
  return logitNodeId(n.nLayers, n.logits.tokenId[i - lay.logitOffset], n.nPositions - 1);
}

export interface ImportedForStore {
  nodes: AttributionNodes;
  csr: CsrAdjacency;
  view: PrunedGraph;
  labels: Record<string, string>;
  pinned: string[];
  supernodes: Supernode[];
  /** Node notes from qParams `nodeNotes` (nodes of the file, strings only). */
  nodeNotes: Record<string, string>;
  prompt: string;
  notes: string[];
}

const CLERP = /^Output "(.*)" \(p=[^)]*\)$/s;

/** Largest imported models: layers, and layers × prompt positions (the error nodes). */
export const MAX_IMPORT_LAYERS = 1024;
export const MAX_IMPORT_ERROR_NODES = 2_000_000;

export function importedToStorable(doc: ImportedGraph): ImportedForStore {
  const T = doc.metadata.prompt_tokens.length;
  if (T === 0) throw new ApiError('invalid_params', 'the graph has no prompt tokens', { field: 'json' });
  const feats: number[] = [];
  const logits: number[] = [];
  const tokenIds = new Int32Array(T).fill(-1);
  let logitLayer = -1;
  let maxLayer = -1;
  doc.nodes.forEach((n, k) => {
    const p = n.parsed;
    if (p.kind === 'feature') feats.push(k);
    else if (p.kind === 'logit') {
      logits.push(k);
      logitLayer = p.layer;
    } else if (p.kind === 'token') tokenIds[p.position] = p.index;
    if (p.kind === 'feature' || p.kind === 'error') maxLayer = Math.max(maxLayer, p.layer);
  });
  const nLayers = logitLayer > 0 ? logitLayer - 1 : maxLayer + 1;
  // The stored graph has an error node per (layer, position), allocated whole: a 46 KB file
  // naming logit layer 1,000,001 would otherwise become ~100M nodes.
  if (nLayers > MAX_IMPORT_LAYERS || nLayers * T > MAX_IMPORT_ERROR_NODES) {
    throw new ApiError(
      'invalid_params',
      `the graph's layers (${nLayers}${logitLayer > 0 ? `, from its logit layer ${logitLayer}` : ''}) × ` +
        `its ${T} positions are more than is imported (at most ${MAX_IMPORT_LAYERS} layers and ` +
        `${MAX_IMPORT_ERROR_NODES.toLocaleString('en-US')} layer × position pairs)`,
      { field: 'json' },
    );
  }
  if (maxLayer >= nLayers) {
    throw new ApiError('invalid_params', `a node has layer ${maxLayer}, not below the logit layer`, {
      field: 'json',
    });
  }
  const P = (k: number) => doc.nodes[k].parsed;
  feats.sort((a, b) => P(a).layer - P(b).layer || P(a).position - P(b).position || P(a).index - P(b).index);
  logits.sort((a, b) => doc.nodes[b].token_prob - doc.nodes[a].token_prob || a - b);
  const nodes: AttributionNodes = {
    nLayers,
    nPositions: T,
    promptTokenIds: tokenIds,
    promptTokens: [...doc.metadata.prompt_tokens],
    features: {
      layer: Int32Array.from(feats, (k) => P(k).layer),
      position: Int32Array.from(feats, (k) => P(k).position),
      index: Int32Array.from(feats, (k) => P(k).index),
      activation: Float32Array.from(feats, (k) => doc.nodes[k].activation ?? 0),
    },
    logits: {
      tokenId: Int32Array.from(logits, (k) => P(k).index),
      probability: Float32Array.from(logits, (k) => doc.nodes[k].token_prob),
      token: logits.map((k) => CLERP.exec(doc.nodes[k].clerp)?.[1] ?? ''),
    },
  };
  const lay = nodeLayout(nodes);
  // document node → raw index
  const rawOf = new Int32Array(doc.nodes.length);
  feats.forEach((k, i) => {
    rawOf[k] = i;
  });
  logits.forEach((k, i) => {
    rawOf[k] = lay.logitOffset + i;
  });
  doc.nodes.forEach((n, k) => {
    const p = n.parsed;
    if (p.kind === 'error') rawOf[k] = lay.errorOffset + p.layer * T + p.position;
    else if (p.kind === 'token') rawOf[k] = lay.tokenOffset + p.position;
  });

  // CSR over (target, source), sorted.
  const E = doc.links.source.length;
  const order = Array.from({ length: E }, (_, e) => e);
  const tgt = (e: number) => rawOf[doc.links.target[e]];
  const src = (e: number) => rawOf[doc.links.source[e]];
  order.sort((a, b) => tgt(a) - tgt(b) || src(a) - src(b));
  const N = lay.total;
  const rowPtr = new Int32Array(N + 1);
  const col = new Int32Array(E);
  const val = new Float32Array(E);
  const eT = new Int32Array(E);
  order.forEach((e, q) => {
    rowPtr[tgt(e) + 1]++;
    col[q] = src(e);
    val[q] = doc.links.weight[e];
    eT[q] = tgt(e);
  });
  for (let t = 0; t < N; t++) rowPtr[t + 1] += rowPtr[t];

  const kept = Int32Array.from(rawOf).sort();
  const influenceOf = new Map<number, number>();
  doc.nodes.forEach((n, k) => {
    influenceOf.set(rawOf[k], n.influence ?? Number.NaN);
  });
  const w = doc.metadata.workbench;
  const extra = doc.metadata.extra.pruning_settings as { edge_threshold?: unknown } | undefined;
  const edgeThreshold = typeof extra?.edge_threshold === 'number' ? extra.edge_threshold : 1;
  const view: PrunedGraph = {
    keptNodes: kept,
    nodeInfluence: Float32Array.from(kept, (i) => influenceOf.get(i) ?? Number.NaN),
    edges: { target: eT, source: Int32Array.from(col), weight: Float32Array.from(val) },
    replacementScore: w?.replacement_score ?? Number.NaN,
    completenessScore: w?.completeness_score ?? Number.NaN,
    nodeThreshold: doc.metadata.node_threshold ?? 1,
    edgeThreshold,
  };
  const labels: Record<string, string> = {};
  for (const [nodeId, clerp] of doc.labels) labels[nodeId] = clerp;
  return {
    nodes,
    csr: { n: N, rowPtr, col, val },
    view,
    labels,
    pinned: doc.qParams.pinnedIds.filter((id) => doc.nodeIndex.has(id)),
    supernodes: doc.qParams.supernodes
      .map((g) => ({ label: g[0], nodeIds: g.slice(1).filter((id) => doc.nodeIndex.has(id)) }))
      .filter((s) => s.nodeIds.length > 0),
    nodeNotes: importedNodeNotes(doc),
    prompt: doc.metadata.prompt,
    notes: doc.conversions.notes,
  };
}

/** qParams `nodeNotes` of an imported file: string notes of its own nodes; anything else is ignored. */
function importedNodeNotes(doc: ImportedGraph): Record<string, string> {
  const raw = doc.qParams.extra.nodeNotes;
  const out: Record<string, string> = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const [id, note] of Object.entries(raw))
    if (typeof note === 'string' && note.trim() !== '' && doc.nodeIndex.has(id)) out[id] = note;
  return out;
}
