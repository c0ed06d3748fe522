/**
 * A trace's graph: its views as the UI draws them (the stored view at the asked thresholds and
 * pins, pruned on the compute backend and stored the first time it is asked for, with labels,
 * annotations and automatic labels), graph JSON export and import, the diff of two traces
 * (engine/graph-diff, each at its own thresholds), and its node ids.
 */
import { DEFAULT_TRACE_SETTINGS } from '../../engine/attribution/defaults.ts';
import { nodeLayout } from '../../engine/attribution/graph-types.ts';
import { isEngineError } from '../../engine/errors.ts';
import { diffGraphs } from '../../engine/graph-diff/diff.ts';
import { logitKeyOf } from '../../engine/graph-diff/input.ts';
import type { DiffGraph, GraphDiff } from '../../engine/graph-diff/types.ts';
import { importGraphJson } from '../../engine/graph-json/import.ts';
import type { PrunedGraph } from '../../engine/pruning/prune.ts';
import { pinnedKey, type StoredView } from '../../store/graphs.ts';
import type { Store } from '../../store/store.ts';
import type { TraceRecord } from '../../store/types.ts';
import { type DomainHandlers, type HandlerContext, type ServiceContext, traceUpdated } from '../context.ts';
import type { GraphView, Params, TraceDiff } from '../contract.ts';
import { ApiError } from '../errors.ts';
import { exportGraphJsonText, importedToStorable, importFileName, slugify } from '../graph-json-io.ts';
import { packMergedEdges } from '../packed-edges.ts';
import { applyAutoLabels, buildGraphView, nodeId, nodeIndexById, nodeKind } from '../view.ts';

export function graphsHandlers(ctx: HandlerContext): DomainHandlers<'graphs'> {
  return {
    'graphs.view': async (p) => (await traceView(ctx, p.traceId, p)).view,
    'graphs.prune': async (p) => {
      const r = await traceView(ctx, p.traceId, p);
      return r.stored.summary;
    },
    'graphs.views': (p) => {
      ctx.store.traces.get(p.traceId);
      return ctx.store.graphs.listViews(p.traceId);
    },
    'graphs.exportJson': async (p) => {
      const { trace, view, stored, nodes } = await traceView(ctx, p.traceId, p);
      const labels = new Map<string, string>();
      for (const n of view.nodes) if (n.kind !== 'logit' && n.label) labels.set(n.id, n.label);
      const ann = ctx.store.annotations.get(trace.id);
      const model = trace.modelId === null ? null : ctx.store.models.find(trace.modelId);
      const set =
        trace.transcoderSetId === null ? null : ctx.store.models.findTranscoderSet(trace.transcoderSetId);
      const slug = `${slugify(trace.prompt)}-${trace.id}`;
      const json = exportGraphJsonText({
        nodes,
        pruned: stored.pruned,
        labels,
        pinned: ann.pinned,
        supernodes: ann.supernodes,
        notes: ann.notes,
        slug,
        scan: model?.name ?? '',
        prompt: trace.prompt,
        modelId: model?.name ?? null,
        transcoderList: set ? [set.dir] : [],
        info: JSON.parse(
          JSON.stringify({ traceId: trace.id, settings: trace.settings, tokenIds: trace.tokenIds }),
        ),
      });
      return { fileName: `${slug}.json`, json };
    },
    'graphs.diff': (p) => diffTraces(ctx, p),
    'graphs.nodeIds': (p) => traceNodeIds(ctx.store, p.traceId),
    'graphs.importJson': (p) => {
      let doc: ReturnType<typeof importGraphJson>;
      try {
        doc = importGraphJson(p.json, { file: importFileName(p.fileName) });
      } catch (e) {
        if (isEngineError(e)) {
          throw new ApiError('invalid_params', `graph JSON: ${e.message}`, {
            field: e.field,
            engineCode: e.code,
          });
        }
        throw e;
      }
      const g = importedToStorable(doc);
      const projectId = p.projectId ?? ctx.store.projects.ensureDefault().id;
      ctx.store.projects.get(projectId);
      const trace = ctx.store.saveTrace({
        trace: {
          projectId,
          modelId: null,
          transcoderSetId: null,
          source: 'import',
          prompt: g.prompt,
          tokenIds: null,
          settings: {
            ...DEFAULT_TRACE_SETTINGS,
            nodeThreshold: g.view.nodeThreshold,
            edgeThreshold: g.view.edgeThreshold,
            provider: 'none',
          },
          tags: p.tags,
          notes: g.notes.length ? `Imported graph JSON. ${g.notes.join('; ')}` : 'Imported graph JSON.',
        },
        raw: { nodes: g.nodes, csr: g.csr },
        views: [{ pruned: g.view }],
        annotations: { labels: g.labels, pinned: g.pinned, supernodes: g.supernodes, notes: g.nodeNotes },
      });
      traceUpdated(ctx, trace);
      return { trace, notes: g.notes };
    },
  };
}

export interface TraceView {
  trace: TraceRecord;
  view: GraphView;
  stored: StoredView;
  nodes: ReturnType<Store['graphs']['nodes']>;
}

export async function traceView(
  ctx: ServiceContext,
  traceId: number,
  p: { nodeThreshold?: number; edgeThreshold?: number; usePins?: boolean; edges?: 'arrays' | 'packed' },
): Promise<TraceView> {
  const trace = ctx.store.traces.get(traceId);
  const def = ctx.store.graphs.defaultView(traceId);
  if (!def || !ctx.store.graphs.has(traceId)) {
    throw new ApiError('conflict', `trace ${traceId} has no graph yet (it is ${trace.status})`, {
      field: 'traceId',
    });
  }
  const nodes = ctx.store.graphs.nodes(traceId);
  const nt = p.nodeThreshold ?? def.pruned.nodeThreshold;
  const et = p.edgeThreshold ?? def.pruned.edgeThreshold;
  const ann = ctx.store.annotations.get(traceId);
  const imported = trace.source === 'import';
  let pinnedIds: string[] = [];
  let pinnedIdx: number[] = [];
  if ((p.usePins ?? true) && !imported && ann.pinned.length) {
    const ids = nodeIndexById(nodes);
    const lay = nodeLayout(nodes);
    for (const id of ann.pinned) {
      const i = ids.get(id);
      // Only feature and error nodes can be pruned; pinning the others changes nothing.
      if (i !== undefined && (nodeKind(lay, i) === 'feature' || nodeKind(lay, i) === 'error')) {
        pinnedIds.push(id);
        pinnedIdx.push(i);
      }
    }
    pinnedIdx = [...new Set(pinnedIdx)];
    pinnedIds = [...new Set(pinnedIds)];
  }
  const key = pinnedKey(pinnedIdx);
  let stored: StoredView | null = ctx.store.graphs.getView(traceId, nt, et, key);
  const cached = stored !== null;
  if (!stored) {
    if (imported) {
      throw new ApiError(
        'unsupported',
        `trace ${traceId} is an imported graph: without its unpruned adjacency it is only available at its own thresholds (node ${def.pruned.nodeThreshold}, edge ${def.pruned.edgeThreshold})`,
        { field: 'nodeThreshold' },
      );
    }
    const pruned: PrunedGraph = await ctx.compute.prune({
      key: ctx.store.graphs.sidecarName(traceId),
      raw: () => ctx.store.graphs.loadRaw(traceId),
      options: { nodeThreshold: nt, edgeThreshold: et, pinned: pinnedIdx },
    });
    const summary = ctx.store.graphs.putView(traceId, pruned, { pinned: key });
    stored = { summary, pruned };
    ctx.emit('library.changed', { entity: 'view', id: traceId });
  }
  const labels =
    trace.transcoderSetId === null
      ? new Map<string, string>()
      : ctx.store.features.labels(trace.transcoderSetId);
  const view = buildGraphView({
    traceId,
    nodes,
    pruned: stored.pruned,
    featureLabels: labels,
    annotations: ann,
    pinned: pinnedIds,
    cached,
    imported,
    packEdges: p.edges === 'packed',
  });
  if (trace.transcoderSetId !== null)
    applyAutoLabels(
      view,
      ctx.store.features.dashboardDigests(
        trace.transcoderSetId,
        view.nodes.filter((n) => n.kind === 'feature'),
      ),
    );
  return { trace, view, stored, nodes };
}

function toDiffGraph(trace: TraceRecord, view: GraphView, store: Store): DiffGraph {
  if (trace.modelId === null || trace.transcoderSetId === null) {
    throw new ApiError(
      'unsupported',
      `trace ${trace.id} is an imported graph with no registered model; diff its graph JSON with \`circuit diff\``,
      { field: 'traceId' },
    );
  }
  const model = store.models.find(trace.modelId);
  const set = store.models.findTranscoderSet(trace.transcoderSetId);
  return {
    name: `trace ${trace.id}`,
    identity: {
      model: `${JSON.stringify(model?.name ?? '?')} (model ${trace.modelId})`,
      transcoderSet: `${JSON.stringify(set?.dir ?? '?')} (transcoder set ${trace.transcoderSetId})`,
    },
    promptTokens: view.promptTokens,
    nodes: view.nodes.map((n) => {
      const text = n.kind === 'token' || n.kind === 'logit' ? (n.token ?? '') : n.label;
      return {
        id: n.id,
        kind: n.kind,
        layer: n.layer,
        index: n.index,
        position: n.position,
        activation: n.activation,
        influence: n.influence,
        probability: n.probability,
        label: text,
        ...(n.kind === 'logit' ? { logitKey: text === '' ? `token:${n.index}` : logitKeyOf(text) } : {}),
      };
    }),
    edges: view.edges,
  };
}

async function diffTraces(ctx: ServiceContext, p: Params<'graphs.diff'>): Promise<TraceDiff> {
  const a = await traceView(ctx, p.a.traceId, p.a);
  const b = await traceView(ctx, p.b.traceId, p.b);
  const diff: GraphDiff = diffGraphs(
    toDiffGraph(a.trace, a.view, ctx.store),
    toDiffGraph(b.trace, b.view, ctx.store),
    {
      top: p.top,
      merged: p.merged ?? false,
    },
  );
  const side = (x: { trace: TraceRecord; view: GraphView }) => ({
    traceId: x.trace.id,
    prompt: x.trace.prompt,
    nodeThreshold: x.view.nodeThreshold,
    edgeThreshold: x.view.edgeThreshold,
  });
  const merged =
    diff.merged && p.edges === 'packed'
      ? { nodes: diff.merged.nodes, edges: [], packedEdges: packMergedEdges(diff.merged.edges) }
      : diff.merged;
  return { ...diff, merged, traces: { a: side(a), b: side(b) }, nLayers: a.view.nLayers };
}

/**
 * `graphs.nodeIds`: every node id of a trace's graph before pruning (for an imported graph: the
 * file's nodes). Compare tells "not in this trace" from "pruned at these thresholds" with it.
 */
function traceNodeIds(store: Store, traceId: number): { traceId: number; ids: string[] } {
  const trace = store.traces.get(traceId);
  if (!store.graphs.has(traceId)) {
    throw new ApiError('conflict', `trace ${traceId} has no graph yet (it is ${trace.status})`, {
      field: 'traceId',
    });
  }
  const nodes = store.graphs.nodes(traceId);
  const lay = nodeLayout(nodes);
  const ids = new Array<string>(lay.total);
  for (let i = 0; i < lay.total; i++) ids[i] = nodeId(nodes, lay, i);
  return { traceId, ids };
}
