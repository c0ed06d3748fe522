/**
 * Import of circuit-tracer / Neuronpedia graph JSON from untrusted input (attribution.md §6).
 *
 * Checks every field's type, sizes against configurable limits, unique node ids that fit their
 * feature_type (and agree with `layer` and `ctx_idx`), links between existing nodes in the
 * direction the graph allows (a logit is never a source; an embedding or error node is never a
 * target), finite numbers, no duplicate links, no `__proto__` keys. Older files' error ids
 * `0_{layer}_{pos}` become `{layer}_-1_{pos}` everywhere (nodes, links, pinned ids,
 * supernodes, clickedId) and each conversion is recorded. Fields this reader does not know
 * are kept as validated JSON (`extra`) at the metadata, qParams and top level; unknown node and
 * link fields are dropped (and noted).
 */
import { EngineError } from '../errors.ts';
import { METADATA_KEYS, QPARAMS_KEYS, TOP_KEYS } from './export.ts';
import { errorNodeId, kindOfFeatureType, type NodeKind, parseNodeId } from './ids.ts';
import type {
  GraphDocument,
  GraphLinks,
  GraphMetadata,
  GraphNode,
  GraphQParams,
  JsonObject,
  WorkbenchMetadata,
} from './types.ts';
import { NODE_FIELDS } from './types.ts';
import { Checker, type ImportLimits } from './validate.ts';

export interface ImportOptions {
  /** Named in every error message. */
  file?: string;
  limits?: Partial<ImportLimits>;
}

export interface ImportConversions {
  /** Older error ids converted: [old id, new id]. */
  legacyErrorIds: Array<[string, string]>;
  /** Human-readable notes on everything else that was normalized or defaulted. */
  notes: string[];
}

export interface ImportedGraph extends GraphDocument {
  /** node_id → clerp of feature, error and token nodes with a non-empty clerp. */
  labels: Map<string, string>;
  /** node_id → index into nodes. */
  nodeIndex: Map<string, number>;
  conversions: ImportConversions;
}

const WORKBENCH_KEYS = ['model_id', 'replacement_score', 'completeness_score'] as const;

/** Parses and validates graph JSON text (string or UTF-8 bytes). */
export function importGraphJson(
  input: string | Uint8Array | ArrayBuffer,
  options: ImportOptions = {},
): ImportedGraph {
  const c = new Checker(options.limits, options.file);
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
    const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    if (bytes.length > c.limits.maxChars) {
      c.fail('config', `input has ${bytes.length} bytes, more than the limit ${c.limits.maxChars}`, '(root)');
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return c.fail('header', 'input is not valid UTF-8', '(root)');
    }
  } else {
    throw new EngineError('argument', 'input must be a string, Uint8Array or ArrayBuffer', {
      field: 'input',
    });
  }
  if (text.length > c.limits.maxChars) {
    c.fail(
      'config',
      `input has ${text.length} characters, more than the limit ${c.limits.maxChars}`,
      '(root)',
    );
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return c.fail('header', `not valid JSON: ${(e as Error).message}`, '(root)');
  }
  return validateGraph(value, c);
}

/** Validates a value produced by JSON.parse (plain data only: no getters, proxies or classes). */
export function importGraphValue(value: unknown, options: ImportOptions = {}): ImportedGraph {
  return validateGraph(value, new Checker(options.limits, options.file));
}

function extraFields(
  c: Checker,
  obj: Record<string, unknown>,
  known: readonly string[],
  field: string,
): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(obj)) {
    if ((known as readonly string[]).includes(key)) continue;
    c.string(key, `${field} key`);
    out[key] = c.json(obj[key], field === '' ? key : `${field}.${key}`);
  }
  return out;
}

function validateGraph(value: unknown, c: Checker): ImportedGraph {
  const notes: string[] = [];
  const root = c.object(value, '(root)');
  const L = c.limits;

  // ---- metadata
  const md = c.object(root.metadata, 'metadata');
  const slug = c.string(md.slug, 'metadata.slug');
  const scan = c.string(md.scan, 'metadata.scan');
  let transcoderList: string[] = [];
  if (md.transcoder_list === undefined) notes.push('metadata.transcoder_list was missing: set to []');
  else transcoderList = c.stringList(md.transcoder_list, 'metadata.transcoder_list');
  const promptTokens = c.stringList(md.prompt_tokens, 'metadata.prompt_tokens');
  const prompt = c.string(md.prompt, 'metadata.prompt', L.maxPromptLength);
  const nodeThreshold =
    md.node_threshold === undefined ? null : c.finiteOrNull(md.node_threshold, 'metadata.node_threshold');
  let schemaVersion = 1;
  if (md.schema_version === undefined) notes.push('metadata.schema_version was missing: set to 1');
  else {
    schemaVersion = c.integer(md.schema_version, 'metadata.schema_version');
    if (schemaVersion !== 1) {
      c.fail(
        'unsupported',
        `schema_version ${schemaVersion} is not supported (only 1)`,
        'metadata.schema_version',
      );
    }
  }
  let workbench: WorkbenchMetadata | null = null;
  if (md.workbench !== undefined && md.workbench !== null) {
    const w = c.object(md.workbench, 'metadata.workbench');
    workbench = {
      model_id:
        w.model_id === undefined || w.model_id === null
          ? null
          : c.string(w.model_id, 'metadata.workbench.model_id'),
      replacement_score:
        w.replacement_score === undefined
          ? null
          : c.finiteOrNull(w.replacement_score, 'metadata.workbench.replacement_score'),
      completeness_score:
        w.completeness_score === undefined
          ? null
          : c.finiteOrNull(w.completeness_score, 'metadata.workbench.completeness_score'),
    };
    for (const key of Object.keys(w)) {
      if (!(WORKBENCH_KEYS as readonly string[]).includes(key))
        notes.push(`metadata.workbench.${key} dropped`);
    }
  }
  const metadata: GraphMetadata = {
    slug,
    scan,
    transcoder_list: transcoderList,
    prompt_tokens: promptTokens,
    prompt,
    node_threshold: nodeThreshold,
    schema_version: schemaVersion,
    workbench,
    extra: extraFields(c, md, METADATA_KEYS, 'metadata'),
  };
  const T = promptTokens.length;

  // ---- nodes
  const rawNodes = c.array(root.nodes, 'nodes', L.maxNodes);
  const nodes: GraphNode[] = new Array(rawNodes.length);
  const nodeIndex = new Map<string, number>();
  const legacy = new Map<string, string>();
  const legacyErrorIds: Array<[string, string]> = [];
  const unknownNodeFields = new Set<string>();
  const defaulted = new Map<string, number>();
  let logitLayer: number | null = null;
  let maxTranscoderLayer = -1;
  const opt = <V>(o: Record<string, unknown>, key: string, dflt: V, read: (v: unknown) => V): V => {
    if (o[key] === undefined) {
      defaulted.set(key, (defaulted.get(key) ?? 0) + 1);
      return dflt;
    }
    return read(o[key]);
  };
  for (let k = 0; k < rawNodes.length; k++) {
    const f = `nodes[${k}]`;
    const o = c.object(rawNodes[k], f);
    const featureType = c.string(o.feature_type, `${f}.feature_type`);
    const kind: NodeKind | undefined = kindOfFeatureType(featureType);
    if (!kind)
      c.fail('config', `${f}.feature_type "${featureType.slice(0, 80)}" is not known`, `${f}.feature_type`);
    let nodeId = c.string(o.node_id, `${f}.node_id`);
    const parsed = parseNodeId(nodeId, kind);
    if (!parsed) {
      c.fail(
        'config',
        `${f}.node_id "${nodeId.slice(0, 80)}" does not fit feature_type "${featureType}"`,
        `${f}.node_id`,
      );
    }
    if (parsed.legacy) {
      const converted = errorNodeId(parsed.layer, parsed.position);
      legacy.set(nodeId, converted);
      legacyErrorIds.push([nodeId, converted]);
      nodeId = converted;
      parsed.legacy = false;
    }
    if (nodeIndex.has(nodeId)) c.fail('config', `${f}.node_id "${nodeId}" is a duplicate`, `${f}.node_id`);
    const layer = c.string(o.layer, `${f}.layer`);
    const expectLayer = kind === 'token' ? 'E' : String(parsed.layer);
    if (layer !== expectLayer) {
      c.fail(
        'config',
        `${f}.layer "${layer.slice(0, 80)}" disagrees with node_id (expected "${expectLayer}")`,
        `${f}.layer`,
      );
    }
    const ctx = c.integer(o.ctx_idx, `${f}.ctx_idx`, 0, T - 1);
    if (ctx !== parsed.position) {
      c.fail(
        'config',
        `${f}.ctx_idx ${ctx} disagrees with node_id (position ${parsed.position})`,
        `${f}.ctx_idx`,
      );
    }
    if (kind === 'logit') {
      if (logitLayer !== null && logitLayer !== parsed.layer) {
        c.fail('config', `${f}: logit layers differ (${logitLayer} and ${parsed.layer})`, `${f}.layer`);
      }
      logitLayer = parsed.layer;
    } else if (kind !== 'token') maxTranscoderLayer = Math.max(maxTranscoderLayer, parsed.layer);
    for (const key of Object.keys(o))
      if (!(NODE_FIELDS as readonly string[]).includes(key)) unknownNodeFields.add(key);
    nodes[k] = {
      node_id: nodeId,
      feature: c.integer(o.feature, `${f}.feature`),
      layer,
      ctx_idx: ctx,
      feature_type: featureType,
      token_prob: opt(o, 'token_prob', 0, (v) => c.finite(v, `${f}.token_prob`)),
      is_target_logit: opt(o, 'is_target_logit', false, (v) => c.boolean(v, `${f}.is_target_logit`)),
      run_idx: opt(o, 'run_idx', 0, (v) => c.integer(v, `${f}.run_idx`)),
      reverse_ctx_idx: opt(o, 'reverse_ctx_idx', 0, (v) => c.integer(v, `${f}.reverse_ctx_idx`)),
      jsNodeId: opt(o, 'jsNodeId', nodeId, (v) => c.string(v, `${f}.jsNodeId`)),
      clerp: opt(o, 'clerp', '', (v) => c.string(v, `${f}.clerp`)),
      influence: opt(o, 'influence', null, (v) => c.finiteOrNull(v, `${f}.influence`)),
      activation: opt(o, 'activation', null, (v) => c.finiteOrNull(v, `${f}.activation`)),
      parsed,
    };
    nodeIndex.set(nodeId, k);
  }
  if (logitLayer !== null && maxTranscoderLayer >= logitLayer) {
    c.fail(
      'config',
      `a feature or error node has layer ${maxTranscoderLayer} ≥ the logit layer ${logitLayer}`,
      'nodes',
    );
  }
  if (legacyErrorIds.length > 0) {
    notes.push(
      `${legacyErrorIds.length} error node id(s) in the older form 0_{layer}_{pos} converted to {layer}_-1_{pos}`,
    );
  }
  for (const [key, count] of defaulted) notes.push(`${count} node(s) lacked "${key}": default used`);
  for (const key of unknownNodeFields) notes.push(`unknown node field "${key.slice(0, 80)}" dropped`);

  const resolve = (id: string): number | undefined => nodeIndex.get(legacy.get(id) ?? id);

  // ---- links
  const rawLinks = c.array(root.links, 'links', L.maxLinks);
  const E = rawLinks.length;
  const links: GraphLinks = {
    source: new Int32Array(E),
    target: new Int32Array(E),
    weight: new Float64Array(E),
  };
  const pairKeys = new Float64Array(E);
  const nNodes = nodes.length;
  let unknownLinkFields = 0;
  let legacyRefs = 0;
  for (let e = 0; e < E; e++) {
    const f = `links[${e}]`;
    const o = c.object(rawLinks[e], f);
    const src = c.string(o.source, `${f}.source`);
    const tgt = c.string(o.target, `${f}.target`);
    const s = resolve(src);
    if (s === undefined) c.fail('config', `${f}.source "${src.slice(0, 80)}" is not a node`, `${f}.source`);
    const t = resolve(tgt);
    if (t === undefined) c.fail('config', `${f}.target "${tgt.slice(0, 80)}" is not a node`, `${f}.target`);
    if (legacy.has(src) || legacy.has(tgt)) legacyRefs++;
    if (nodes[s].parsed.kind === 'logit')
      c.fail('config', `${f}.source "${src}" is a logit node`, `${f}.source`);
    const tk = nodes[t].parsed.kind;
    if (tk === 'token' || tk === 'error')
      c.fail('config', `${f}.target "${tgt}" is an ${tk} node`, `${f}.target`);
    links.source[e] = s;
    links.target[e] = t;
    links.weight[e] = c.finite(o.weight, `${f}.weight`);
    pairKeys[e] = t * nNodes + s;
    if (unknownLinkFields === 0) {
      for (const key of Object.keys(o))
        if (key !== 'source' && key !== 'target' && key !== 'weight') unknownLinkFields++;
    }
  }
  if (E > 1) {
    const sorted = pairKeys.sort();
    for (let q = 1; q < E; q++) {
      if (sorted[q] === sorted[q - 1]) {
        const t = Math.floor(sorted[q] / nNodes);
        const s = sorted[q] - t * nNodes;
        let e = 0;
        while (!(links.target[e] === t && links.source[e] === s)) e++;
        let e2 = e + 1;
        while (!(links.target[e2] === t && links.source[e2] === s)) e2++;
        c.fail(
          'config',
          `links[${e2}] repeats links[${e}] (${nodes[s].node_id} → ${nodes[t].node_id})`,
          `links[${e2}]`,
        );
      }
    }
  }
  if (legacyRefs > 0) notes.push(`${legacyRefs} link(s) referred to older error ids`);
  if (unknownLinkFields > 0) notes.push('unknown link fields dropped');

  // ---- qParams
  const mapId = (id: string): string => legacy.get(id) ?? id;
  let qParams: GraphQParams;
  if (root.qParams === undefined) {
    notes.push('qParams was missing: defaults used');
    qParams = { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '', extra: {} };
  } else {
    const q = c.object(root.qParams, 'qParams');
    let pinned: string[] = [];
    if (typeof q.pinnedIds === 'string') {
      notes.push('qParams.pinnedIds was a comma-separated string: split');
      const s = c.string(q.pinnedIds, 'qParams.pinnedIds', L.maxStringLength * 100);
      pinned = s === '' ? [] : s.split(',');
      c.stringList(pinned, 'qParams.pinnedIds');
    } else if (q.pinnedIds !== undefined) pinned = c.stringList(q.pinnedIds, 'qParams.pinnedIds');
    let groups: unknown = q.supernodes ?? [];
    if (typeof groups === 'string') {
      notes.push('qParams.supernodes was a JSON string: parsed');
      const s = c.string(groups, 'qParams.supernodes', L.maxStringLength * 100);
      try {
        groups = s === '' ? [] : JSON.parse(s);
      } catch {
        c.fail('header', 'qParams.supernodes is a string that is not JSON', 'qParams.supernodes');
      }
    }
    const ga = c.array(groups, 'qParams.supernodes', L.maxSupernodes);
    const supernodes = ga.map((g, i) => {
      const list = c.stringList(g, `qParams.supernodes[${i}]`);
      if (list.length === 0)
        c.fail('config', `qParams.supernodes[${i}] is empty (needs a label)`, `qParams.supernodes[${i}]`);
      return [list[0], ...list.slice(1).map(mapId)];
    });
    qParams = {
      pinnedIds: pinned.map(mapId),
      supernodes,
      linkType: q.linkType === undefined ? 'both' : c.string(q.linkType, 'qParams.linkType'),
      clickedId: q.clickedId === undefined ? '' : mapId(c.string(q.clickedId, 'qParams.clickedId')),
      sg_pos: q.sg_pos === undefined ? '' : c.string(q.sg_pos, 'qParams.sg_pos'),
      extra: extraFields(c, q, QPARAMS_KEYS, 'qParams'),
    };
  }

  const labels = new Map<string, string>();
  for (const n of nodes) if (n.parsed.kind !== 'logit' && n.clerp !== '') labels.set(n.node_id, n.clerp);

  return {
    metadata,
    qParams,
    nodes,
    links,
    extra: extraFields(c, root, TOP_KEYS, ''),
    labels,
    nodeIndex,
    conversions: { legacyErrorIds, notes },
  };
}
