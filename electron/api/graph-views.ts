/**
 * A trace's graph as the UI draws it: the stored view at the asked thresholds and pins, pruned
 * (on the compute backend) and stored the first time it is asked for, with the feature labels,
 * annotations and automatic labels applied.
 */
import { nodeLayout } from '../engine/attribution/graph-types.ts';
import type { PrunedGraph } from '../engine/pruning/prune.ts';
import { pinnedKey, type StoredView } from '../store/graphs.ts';
import type { Store } from '../store/store.ts';
import type { TraceRecord } from '../store/types.ts';
import type { ServiceContext } from './context.ts';
import type { GraphView } from './contract.ts';
import { ApiError } from './errors.ts';
import { applyAutoLabels, buildGraphView, nodeIndexById, nodeKind } from './view.ts';

export interface TraceView {
  trace: TraceRecord;
  view: GraphView;
  stored: StoredView;
  nodes: ReturnType<Store['graphs']['nodes']>;
}

export async function traceView(
  ctx: ServiceContext,
  traceId: number,
  p: { nodeThreshold?: number; edgeThreshold?: number; usePins?: boolean },
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
