/**
 * The params schema of every API method: what the transports validate before a handler runs.
 * `satisfies` ties each schema to the contract's declared params, so they cannot drift apart.
 */

import { parseTargetSpecs } from '../engine/attribution/target-json.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import type { FeatureEdit } from '../engine/intervene/spec.ts';
import type { MethodName, Params, TraceTarget } from './contract.ts';
import {
  array,
  boolean,
  id,
  int,
  json,
  narrow,
  nullable,
  number,
  object,
  oneOf,
  optional,
  record,
  refine,
  type Schema,
  string,
} from './validator.ts';

/** Graph JSON node ids: `{l}_{f}_{p}`, `{l}_-1_{p}`, `E_{tok}_{p}`. */
export const NODE_ID = string({
  max: 40,
  pattern: /^(?:E|0|[1-9][0-9]{0,8})_(?:-1|0|[1-9][0-9]{0,8})_(?:0|[1-9][0-9]{0,8})$/,
  patternName: 'a graph node id such as "3_1207_4", "3_-1_4" or "E_651_2"',
});

const TAG = string({
  min: 1,
  max: 64,
  pattern: /^\S(?:.*\S)?$/,
  patternName: 'a tag of 1 to 64 characters without leading or trailing spaces',
});
const NAME = string({
  min: 1,
  max: 200,
  pattern: /\S/,
  patternName: 'a name of 1 to 200 characters, not blank',
});
const THRESHOLD = number({ min: 0, max: 1 });
const FOLDER = string({ min: 1, max: 4096 });
const DIFF_SIDE = { traceId: id(), nodeThreshold: optional(THRESHOLD), edgeThreshold: optional(THRESHOLD) };

/**
 * Attribution targets (engine/attribution/target-json.ts), checked strictly: fields, types,
 * labels, inline vectors of at most MAX_VECTOR_LENGTH numbers (the model's d_model is checked
 * when the trace is queued).
 */
const TRACE_TARGETS = refine(json({ maxDepth: 3 }), (v) => {
  try {
    parseTargetSpecs(v);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}) as Schema<TraceTarget[]>;

export const TRACE_SETTINGS = object({
  maxNLogits: optional(int({ min: 1, max: 1000 })),
  desiredLogitProb: optional(
    refine(number({ min: 0, max: 1 }), (p) => (p > 0 ? null : 'must be greater than 0')),
  ),
  maxFeatureNodes: optional(nullable(int({ min: 1, max: 1_000_000 }))),
  batchSize: optional(int({ min: 1, max: 65_536 })),
  nodeThreshold: optional(THRESHOLD),
  edgeThreshold: optional(THRESHOLD),
  provider: optional(oneOf(['cpu', 'webgpu', 'cuda', 'auto'] as const)),
  targets: optional(nullable(TRACE_TARGETS)),
});

const FEATURE_RECORD = refine(json({ maxDepth: 8 }), (v) => {
  const r = v as Record<string, unknown>;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'must be a feature record (an object)';
  for (const k of ['index', 'layer'] as const) {
    if (!Number.isSafeInteger(r[k]) || (r[k] as number) < 0) return `.${k} must be a non-negative integer`;
  }
  if (!Array.isArray(r.examples_quantiles)) return '.examples_quantiles must be a list';
  return null;
}) as Schema<unknown> as Schema<FeatureRecord>;

/** One feature edit; a value only where the mode takes one (set: activation, scale: factor). */
interface FeatureEditFields {
  layer: number;
  feature: number;
  position: number;
  mode: FeatureEdit['mode'];
  value?: number;
}
const FEATURE_EDIT = narrow<FeatureEditFields, FeatureEdit>(
  object({
    layer: int({ min: 0, max: 10_000 }),
    feature: int({ min: 0, max: 2 ** 31 - 1 }),
    position: int({ min: 0, max: 1_000_000 }),
    mode: oneOf(['set', 'scale', 'ablate'] as const),
    value: optional(number({ min: -1e6, max: 1e6 })),
  }),
  (e) =>
    e.mode === 'ablate'
      ? e.value === undefined
        ? null
        : '.value must be absent for ablate'
      : e.value === undefined
        ? `.value is required for ${e.mode} (${e.mode === 'set' ? 'the activation' : 'the factor'})`
        : null,
);

const EMPTY = object({});
const BY_ID = object({ id: id() });
const FEATURE_REF = { transcoderSetId: id(), layer: int({ min: 0, max: 10_000 }), index: int({ min: 0 }) };
const VIEW_PARAMS = {
  traceId: id(),
  nodeThreshold: optional(THRESHOLD),
  edgeThreshold: optional(THRESHOLD),
  usePins: optional(boolean()),
};

export const PARAMS = {
  'server.info': EMPTY,

  'projects.list': EMPTY,
  'projects.create': object({ name: NAME, description: optional(string({ max: 10_000 })) }),
  'projects.update': object({
    id: id(),
    name: optional(NAME),
    description: optional(string({ max: 10_000 })),
  }),
  'projects.delete': BY_ID,

  'models.list': EMPTY,
  'models.get': BY_ID,
  'models.register': object({ checkpointDir: FOLDER, transcoderDir: FOLDER, name: optional(NAME) }),
  'models.validate': BY_ID,
  'models.rename': object({ id: id(), name: NAME }),
  'models.delete': BY_ID,
  'models.transcoderSets': EMPTY,
  'models.tokens': object({
    modelId: id(),
    query: optional(string({ max: 200 })),
    prompt: optional(string({ max: 20_000 })),
    limit: optional(int({ min: 1, max: 200 })),
  }),

  'traces.start': object({
    modelId: id(),
    prompt: optional(string({ min: 1, max: 100_000 })),
    tokenIds: optional(array(int({ min: 0, max: 2 ** 31 - 1 }), { min: 2, max: 65_536 })),
    projectId: optional(id()),
    settings: optional(TRACE_SETTINGS),
    tags: optional(array(TAG, { max: 100 })),
    notes: optional(string({ max: 100_000 })),
  }),
  'traces.get': BY_ID,
  'traces.list': object({
    projectId: optional(id()),
    query: optional(string({ max: 1000 })),
    tags: optional(array(TAG, { max: 20 })),
    modelId: optional(id()),
    transcoderSetId: optional(id()),
    status: optional(oneOf(['queued', 'running', 'done', 'failed', 'cancelled'] as const)),
    feature: optional(object({ layer: int({ min: 0 }), index: int({ min: 0 }) })),
    deleted: optional(oneOf(['exclude', 'include', 'only'] as const)),
    limit: optional(int({ min: 1, max: 1000 })),
    offset: optional(int({ min: 0 })),
  }),
  'traces.cancel': BY_ID,
  'traces.retrace': object({ id: id(), settings: optional(TRACE_SETTINGS), projectId: optional(id()) }),
  'traces.delete': object({ id: id(), permanent: optional(boolean()) }),
  'traces.restore': BY_ID,
  'traces.duplicate': object({ id: id(), projectId: optional(id()) }),
  'traces.update': object({ id: id(), notes: optional(string({ max: 100_000 })), projectId: optional(id()) }),
  'traces.tag': object({
    id: id(),
    add: optional(array(TAG, { max: 100 })),
    remove: optional(array(TAG, { max: 100 })),
  }),
  'traces.tags': EMPTY,

  'graphs.view': object({ ...VIEW_PARAMS, edges: optional(oneOf(['arrays', 'packed'] as const)) }),
  'graphs.prune': object({
    traceId: id(),
    nodeThreshold: THRESHOLD,
    edgeThreshold: THRESHOLD,
    usePins: optional(boolean()),
  }),
  'graphs.views': object({ traceId: id() }),
  'graphs.exportJson': object(VIEW_PARAMS),
  'graphs.importJson': object({
    json: string({ min: 1, max: 2 ** 29 - 24 }),
    fileName: optional(string({ min: 1, max: 255 })),
    projectId: optional(id()),
    tags: optional(array(TAG, { max: 100 })),
  }),
  'graphs.diff': object({
    a: object(DIFF_SIDE),
    b: object(DIFF_SIDE),
    top: optional(int({ min: 0, max: 1_000_000 })),
    merged: optional(boolean()),
    edges: optional(oneOf(['objects', 'packed'] as const)),
  }),
  'graphs.nodeIds': object({ traceId: id() }),

  'features.get': object(FEATURE_REF),
  'features.setLabel': object({ ...FEATURE_REF, label: string({ max: 2000 }) }),
  'features.search': object({
    transcoderSetId: id(),
    query: string({ max: 1000 }),
    limit: optional(int({ min: 1, max: 10_000 })),
  }),
  'features.computeDashboards': object({
    transcoderSetId: id(),
    corpus: optional(FOLDER),
    maxTokens: optional(int({ min: 2, max: 1_000_000_000 })),
    ifMissing: optional(boolean()),
  }),
  'features.dashboardsStatus': object({ transcoderSetId: id() }),
  'features.cancelDashboards': object({ transcoderSetId: id() }),
  'features.putDashboards': object({
    transcoderSetId: id(),
    records: array(FEATURE_RECORD, { max: 100_000 }),
  }),

  'interventions.start': object({
    traceId: id(),
    edits: array(FEATURE_EDIT, { min: 1, max: 256 }),
    loop: optional(oneOf(['open', 'closed'] as const)),
    freezeAttention: optional(boolean()),
    generate: optional(int({ min: 0, max: 256 })),
    top: optional(int({ min: 1, max: 100 })),
    label: optional(string({ max: 200 })),
  }),
  'interventions.list': object({ traceId: id() }),
  'interventions.get': BY_ID,
  'interventions.cancel': BY_ID,
  'interventions.delete': BY_ID,

  'annotations.get': object({ traceId: id() }),
  'annotations.update': object({
    traceId: id(),
    pinned: optional(array(NODE_ID, { max: 10_000 })),
    supernodes: optional(
      array(object({ label: string({ max: 2000 }), nodeIds: array(NODE_ID, { min: 1, max: 10_000 }) }), {
        max: 10_000,
      }),
    ),
    layout: optional(
      record(object({ x: number(), y: number() }), { maxKeys: 100_000, key: string({ min: 1, max: 60 }) }),
    ),
    labels: optional(record(string({ max: 2000 }), { maxKeys: 100_000, key: NODE_ID })),
    notes: optional(record(string({ max: 100_000 }), { maxKeys: 100_000, key: NODE_ID })),
  }),
} satisfies { [M in MethodName]: Schema<Params<M>> };

export const METHOD_NAMES = Object.keys(PARAMS) as MethodName[];

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.hasOwn(PARAMS, name);
}

/** Validates `params` for `method` (absent params count as {}). */
export function parseParams<M extends MethodName>(method: M, params: unknown): Params<M> {
  return (PARAMS[method] as Schema<Params<M>>).parse(params ?? {}, '');
}
