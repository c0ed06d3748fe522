/**
 * Export to the circuit-tracer / Neuronpedia graph JSON (attribution.md §6), matching
 * circuit-tracer's `create_graph_files`: nodes in raw order (features, errors, tokens, logits;
 * only kept ones), links in (target, source) order, node fields in its pydantic order, logit
 * nodes with influence/activation null and `is_target_logit` on the most probable logit.
 *
 * The JSON text is deterministic: fixed key order for known fields, sorted keys for extra
 * fields, numbers as ECMAScript's shortest round-trip form (JSON.stringify), one node or link
 * per line. Parsing it back and writing it again gives the same bytes.
 */
import type { RawAttributionGraph } from '../attribution/graph-types.ts';
import { nodeLayout } from '../attribution/graph-types.ts';
import { EngineError } from '../errors.ts';
import type { PrunedGraph } from '../pruning/prune.ts';
import {
  cantorPair,
  embeddingJsNodeId,
  embeddingNodeId,
  errorJsNodeId,
  errorNodeId,
  FEATURE_TYPE,
  featureJsNodeId,
  featureNodeId,
  logitClerp,
  logitJsNodeId,
  logitNodeId,
  type ParsedNodeId,
  processToken,
} from './ids.ts';
import type {
  GraphDocument,
  GraphJson,
  GraphJsonNode,
  GraphMetadata,
  GraphNode,
  GraphQParams,
  JsonObject,
  JsonValue,
} from './types.ts';
import { DEFAULT_LIMITS } from './validate.ts';

export const METADATA_KEYS = [
  'slug',
  'scan',
  'transcoder_list',
  'prompt_tokens',
  'prompt',
  'node_threshold',
  'schema_version',
  'workbench',
] as const;
export const QPARAMS_KEYS = ['pinnedIds', 'supernodes', 'linkType', 'clickedId', 'sg_pos'] as const;
export const TOP_KEYS = ['metadata', 'qParams', 'nodes', 'links'] as const;

export interface GraphExportMetadata {
  slug: string;
  /** Neuronpedia model / transcoder-set id, e.g. "gemma-2-2b". */
  scan: string;
  prompt: string;
  transcoderList?: string[];
  modelId?: string | null;
  /** Further metadata fields (e.g. Neuronpedia's `info`, `generation_settings`); must not clash. */
  extra?: JsonObject;
}

export interface GraphExportInput {
  raw: RawAttributionGraph;
  pruned: PrunedGraph;
  /** node_id → clerp for feature, error and token nodes (logit clerps are generated). */
  labels?: ReadonlyMap<string, string>;
  qParams?: Partial<Omit<GraphQParams, 'extra'>> & { extra?: JsonObject };
  metadata: GraphExportMetadata;
}

function argFail(message: string, field: string): never {
  throw new EngineError('argument', message, { field });
}

function finiteArg(x: number, field: string): number {
  if (!Number.isFinite(x)) argFail(`${field} must be finite, got ${x}`, field);
  return x;
}

function checkExtra(extra: JsonObject | undefined, known: readonly string[], field: string): JsonObject {
  const out: JsonObject = {};
  if (!extra) return out;
  for (const key of Object.keys(extra)) {
    if (key === '__proto__') argFail(`${field} has a "__proto__" key`, field);
    if ((known as readonly string[]).includes(key))
      argFail(`${field}.${key} clashes with a standard field`, field);
    out[key] = extra[key];
  }
  return out;
}

/** Builds the normalized document for a pruned graph. */
/**
 * What `metadata.transcoder_list` carries for one transcoder: a name, never a local path. An
 * absolute path (POSIX, Windows drive or UNC) becomes its last component (the folder or file
 * name); names such as a Hugging Face repo id are kept.
 */
export function transcoderName(entry: string): string {
  if (!/^(\/|[A-Za-z]:[\\/]|\\\\|~[\\/])/.test(entry)) return entry;
  const parts = entry.split(/[\\/]+/).filter((p) => p !== '');
  return parts.at(-1) ?? '';
}

export function buildGraphDocument(input: GraphExportInput): GraphDocument {
  const { raw, pruned } = input;
  const n = raw.nodes;
  const lay = nodeLayout(n);
  const N = lay.total;
  const T = n.nPositions;
  const labels = input.labels ?? new Map<string, string>();
  for (const [id, label] of labels) {
    // Keep exports importable with the default limits.
    if (typeof label !== 'string' || label.length > DEFAULT_LIMITS.maxStringLength) {
      argFail(
        `label of ${id} must be a string of at most ${DEFAULT_LIMITS.maxStringLength} characters`,
        'labels',
      );
    }
  }
  const rawToDoc = new Int32Array(N).fill(-1);
  const nodes: GraphNode[] = [];
  if (pruned.nodeInfluence.length !== pruned.keptNodes.length) {
    argFail('nodeInfluence and keptNodes differ in length', 'pruned.nodeInfluence');
  }

  const make = (
    parsed: ParsedNodeId,
    fields: Omit<GraphJsonNode, 'token_prob' | 'is_target_logit' | 'run_idx' | 'reverse_ctx_idx'> &
      Partial<GraphJsonNode>,
  ): GraphNode => ({
    node_id: fields.node_id,
    feature: fields.feature,
    layer: fields.layer,
    ctx_idx: fields.ctx_idx,
    feature_type: fields.feature_type,
    token_prob: fields.token_prob ?? 0,
    is_target_logit: fields.is_target_logit ?? false,
    run_idx: 0,
    reverse_ctx_idx: 0,
    jsNodeId: fields.jsNodeId,
    clerp: fields.clerp,
    influence: fields.influence,
    activation: fields.activation,
    parsed,
  });

  let prev = -1;
  for (let q = 0; q < pruned.keptNodes.length; q++) {
    const i = pruned.keptNodes[q];
    if (!Number.isInteger(i) || i < 0 || i >= N || i <= prev) {
      argFail(`keptNodes must be ascending indices in [0, ${N}), got ${i} at ${q}`, `pruned.keptNodes[${q}]`);
    }
    prev = i;
    const influence = finiteArg(pruned.nodeInfluence[q], `pruned.nodeInfluence[${q}]`);
    let node: GraphNode;
    if (i < lay.errorOffset) {
      const l = n.features.layer[i];
      const f = n.features.index[i];
      const p = n.features.position[i];
      const id = featureNodeId(l, f, p);
      node = make(
        { kind: 'feature', layer: l, index: f, position: p, legacy: false },
        {
          node_id: id,
          feature: cantorPair(l, f),
          layer: String(l),
          ctx_idx: p,
          feature_type: FEATURE_TYPE.feature,
          jsNodeId: featureJsNodeId(l, f),
          clerp: labels.get(id) ?? '',
          influence,
          activation: finiteArg(n.features.activation[i], `features.activation[${i}]`),
        },
      );
    } else if (i < lay.tokenOffset) {
      const e = i - lay.errorOffset;
      const l = Math.floor(e / T);
      const p = e % T;
      const id = errorNodeId(l, p);
      node = make(
        { kind: 'error', layer: l, index: -1, position: p, legacy: false },
        {
          node_id: id,
          feature: -1,
          layer: String(l),
          ctx_idx: p,
          feature_type: FEATURE_TYPE.error,
          jsNodeId: errorJsNodeId(l, p),
          clerp: labels.get(id) ?? '',
          influence,
          activation: null,
        },
      );
    } else if (i < lay.logitOffset) {
      const p = i - lay.tokenOffset;
      const tok = n.promptTokenIds[p];
      const id = embeddingNodeId(tok, p);
      node = make(
        { kind: 'token', layer: -1, index: tok, position: p, legacy: false },
        {
          node_id: id,
          feature: p,
          layer: 'E',
          ctx_idx: p,
          feature_type: FEATURE_TYPE.token,
          jsNodeId: embeddingJsNodeId(tok, p),
          clerp: labels.get(id) ?? '',
          influence,
          activation: null,
        },
      );
    } else {
      const k = i - lay.logitOffset;
      const tok = n.logits.tokenId[k];
      const prob = finiteArg(n.logits.probability[k], `logits.probability[${k}]`);
      const id = logitNodeId(n.nLayers, tok, T - 1);
      node = make(
        { kind: 'logit', layer: n.nLayers + 1, index: tok, position: T - 1, legacy: false },
        {
          node_id: id,
          feature: tok,
          layer: String(n.nLayers + 1),
          ctx_idx: T - 1,
          feature_type: FEATURE_TYPE.logit,
          token_prob: prob,
          is_target_logit: k === 0,
          jsNodeId: logitJsNodeId(tok, T - 1),
          clerp: logitClerp(n.logits.token[k] ?? '', prob),
          influence: null,
          activation: null,
        },
      );
    }
    rawToDoc[i] = nodes.length;
    nodes.push(node);
  }

  const E = pruned.edges.target.length;
  if (pruned.edges.source.length !== E || pruned.edges.weight.length !== E) {
    argFail('edge arrays differ in length', 'pruned.edges');
  }
  const links = { source: new Int32Array(E), target: new Int32Array(E), weight: new Float64Array(E) };
  for (let e = 0; e < E; e++) {
    const t = pruned.edges.target[e];
    const s = pruned.edges.source[e];
    const dt = t >= 0 && t < N ? rawToDoc[t] : -1;
    const ds = s >= 0 && s < N ? rawToDoc[s] : -1;
    if (dt < 0 || ds < 0)
      argFail(`edge ${e} (${t} ← ${s}) has an endpoint that is not kept`, `pruned.edges[${e}]`);
    links.target[e] = dt;
    links.source[e] = ds;
    links.weight[e] = finiteArg(pruned.edges.weight[e], `pruned.edges.weight[${e}]`);
  }

  const m = input.metadata;
  for (const key of ['slug', 'scan', 'prompt'] as const) {
    if (typeof m[key] !== 'string') argFail(`metadata.${key} must be a string`, `metadata.${key}`);
  }
  const extra = checkExtra(m.extra, METADATA_KEYS, 'metadata.extra');
  if (!('pruning_settings' in extra)) {
    extra.pruning_settings = { node_threshold: pruned.nodeThreshold, edge_threshold: pruned.edgeThreshold };
  }
  const metadata: GraphMetadata = {
    slug: m.slug,
    scan: m.scan,
    transcoder_list: (m.transcoderList ?? []).map(transcoderName),
    prompt_tokens: n.promptTokens.map(processToken),
    prompt: m.prompt,
    node_threshold: pruned.nodeThreshold,
    schema_version: 1,
    workbench: {
      model_id: m.modelId ?? null,
      replacement_score: finiteArg(pruned.replacementScore, 'pruned.replacementScore'),
      completeness_score: finiteArg(pruned.completenessScore, 'pruned.completenessScore'),
    },
    extra,
  };
  const qp = input.qParams ?? {};
  const qParams: GraphQParams = {
    pinnedIds: [...(qp.pinnedIds ?? [])],
    supernodes: (qp.supernodes ?? []).map((g) => [...g]),
    linkType: qp.linkType ?? 'both',
    clickedId: qp.clickedId ?? '',
    sg_pos: qp.sg_pos ?? '',
    extra: checkExtra(qp.extra, QPARAMS_KEYS, 'qParams.extra'),
  };
  return { metadata, qParams, nodes, links, extra: {} };
}

// ---------------------------------------------------------------------------------------------
// Deterministic serialization

const str = JSON.stringify as (v: string | number | boolean | null) => string;

function num(x: number, field: string): string {
  if (!Number.isFinite(x)) argFail(`${field} must be finite, got ${x}`, field);
  return str(x);
}

function numOrNull(x: number | null, field: string): string {
  return x === null ? 'null' : num(x, field);
}

/** Any JSON value with object keys sorted (code-unit order). */
export function stableJson(v: JsonValue): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return str(v);
  if (typeof v === 'number') return num(v, 'value');
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${str(k)}:${stableJson(v[k])}`).join(',')}}`;
}

function objectText(known: string[], extra: JsonObject): string {
  const parts = known.slice();
  for (const k of Object.keys(extra).sort()) parts.push(`${str(k)}:${stableJson(extra[k])}`);
  return `{${parts.join(',')}}`;
}

function metadataText(m: GraphMetadata): string {
  const known = [
    `"slug":${str(m.slug)}`,
    `"scan":${str(m.scan)}`,
    `"transcoder_list":[${m.transcoder_list.map(str).join(',')}]`,
    `"prompt_tokens":[${m.prompt_tokens.map(str).join(',')}]`,
    `"prompt":${str(m.prompt)}`,
    `"node_threshold":${numOrNull(m.node_threshold, 'metadata.node_threshold')}`,
    `"schema_version":${num(m.schema_version, 'metadata.schema_version')}`,
  ];
  if (m.workbench) {
    const w = m.workbench;
    known.push(
      `"workbench":{"model_id":${w.model_id === null ? 'null' : str(w.model_id)},` +
        `"replacement_score":${numOrNull(w.replacement_score, 'metadata.workbench.replacement_score')},` +
        `"completeness_score":${numOrNull(w.completeness_score, 'metadata.workbench.completeness_score')}}`,
    );
  }
  return objectText(known, m.extra);
}

function qParamsText(q: GraphQParams): string {
  return objectText(
    [
      `"pinnedIds":[${q.pinnedIds.map(str).join(',')}]`,
      `"supernodes":[${q.supernodes.map((g) => `[${g.map(str).join(',')}]`).join(',')}]`,
      `"linkType":${str(q.linkType)}`,
      `"clickedId":${str(q.clickedId)}`,
      `"sg_pos":${str(q.sg_pos)}`,
    ],
    q.extra,
  );
}

function nodeText(n: GraphJsonNode, k: number): string {
  return (
    `{"node_id":${str(n.node_id)},"feature":${num(n.feature, `nodes[${k}].feature`)},` +
    `"layer":${str(n.layer)},"ctx_idx":${num(n.ctx_idx, `nodes[${k}].ctx_idx`)},` +
    `"feature_type":${str(n.feature_type)},"token_prob":${num(n.token_prob, `nodes[${k}].token_prob`)},` +
    `"is_target_logit":${n.is_target_logit ? 'true' : 'false'},"run_idx":${num(n.run_idx, `nodes[${k}].run_idx`)},` +
    `"reverse_ctx_idx":${num(n.reverse_ctx_idx, `nodes[${k}].reverse_ctx_idx`)},"jsNodeId":${str(n.jsNodeId)},` +
    `"clerp":${str(n.clerp)},"influence":${numOrNull(n.influence, `nodes[${k}].influence`)},` +
    `"activation":${numOrNull(n.activation, `nodes[${k}].activation`)}}`
  );
}

/** The JSON text in pieces (for streaming very large graphs to a file). */
export function* graphJsonChunks(doc: GraphDocument): Generator<string> {
  yield `{"metadata":${metadataText(doc.metadata)},"qParams":${qParamsText(doc.qParams)},"nodes":[`;
  const ids = doc.nodes.map((n) => str(n.node_id));
  for (let k = 0; k < doc.nodes.length; k++) yield `${k === 0 ? '\n' : ',\n'}${nodeText(doc.nodes[k], k)}`;
  yield `${doc.nodes.length > 0 ? '\n' : ''}],"links":[`;
  const { source, target, weight } = doc.links;
  const nNodes = doc.nodes.length;
  let batch: string[] = [];
  for (let e = 0; e < source.length; e++) {
    const s = source[e];
    const t = target[e];
    if (!(s >= 0 && s < nNodes && t >= 0 && t < nNodes))
      argFail(`link ${e} refers to a missing node`, `links[${e}]`);
    batch.push(
      `${e === 0 ? '\n' : ',\n'}{"source":${ids[s]},"target":${ids[t]},"weight":${num(weight[e], `links[${e}].weight`)}}`,
    );
    if (batch.length === 65536) {
      yield batch.join('');
      batch = [];
    }
  }
  if (batch.length > 0) yield batch.join('');
  const tail = Object.keys(doc.extra)
    .sort()
    .map((k) => `,${str(k)}:${stableJson(doc.extra[k])}`)
    .join('');
  yield `${source.length > 0 ? '\n' : ''}]${tail}}\n`;
}

/** The deterministic JSON text of a document. */
export function stringifyGraphDocument(doc: GraphDocument): string {
  return Array.from(graphJsonChunks(doc)).join('');
}

function withExtra(known: Record<string, unknown>, extra: JsonObject): Record<string, unknown> {
  const out: Record<string, unknown> = { ...known };
  for (const k of Object.keys(extra).sort()) {
    Object.defineProperty(out, k, { value: extra[k], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The wire object (what JSON.parse of the text gives). */
export function toGraphJson(doc: GraphDocument): GraphJson {
  const m = doc.metadata;
  const metaKnown: Record<string, unknown> = {
    slug: m.slug,
    scan: m.scan,
    transcoder_list: [...m.transcoder_list],
    prompt_tokens: [...m.prompt_tokens],
    prompt: m.prompt,
    node_threshold: m.node_threshold,
    schema_version: m.schema_version,
  };
  if (m.workbench) metaKnown.workbench = { ...m.workbench };
  const q = doc.qParams;
  const nodes: GraphJsonNode[] = doc.nodes.map((n) => ({
    node_id: n.node_id,
    feature: n.feature,
    layer: n.layer,
    ctx_idx: n.ctx_idx,
    feature_type: n.feature_type,
    token_prob: n.token_prob,
    is_target_logit: n.is_target_logit,
    run_idx: n.run_idx,
    reverse_ctx_idx: n.reverse_ctx_idx,
    jsNodeId: n.jsNodeId,
    clerp: n.clerp,
    influence: n.influence,
    activation: n.activation,
  }));
  const { source, target, weight } = doc.links;
  const links = Array.from(source, (s, e) => ({
    source: doc.nodes[s].node_id,
    target: doc.nodes[target[e]].node_id,
    weight: weight[e],
  }));
  return withExtra(
    {
      metadata: withExtra(metaKnown, m.extra),
      qParams: withExtra(
        {
          pinnedIds: [...q.pinnedIds],
          supernodes: q.supernodes.map((g) => [...g]),
          linkType: q.linkType,
          clickedId: q.clickedId,
          sg_pos: q.sg_pos,
        },
        q.extra,
      ),
      nodes,
      links,
    },
    doc.extra,
  ) as GraphJson;
}

/** Export: the normalized document, the wire object and its deterministic JSON text. */
export function exportGraphJson(input: GraphExportInput): {
  document: GraphDocument;
  graph: GraphJson;
  json: string;
} {
  const document = buildGraphDocument(input);
  return { document, graph: toGraphJson(document), json: stringifyGraphDocument(document) };
}
