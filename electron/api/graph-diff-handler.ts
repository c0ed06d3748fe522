/**
 * `graphs.diff`: the graph diff (engine/graph-diff) of two traces of the library, each at its
 * own thresholds (default: the trace's own), e.g. the two panes of a compare.
 */

import { nodeLayout } from '../engine/attribution/graph-types.ts';
import { diffGraphs } from '../engine/graph-diff/diff.ts';
import { logitKeyOf } from '../engine/graph-diff/input.ts';
import type { DiffGraph, GraphDiff } from '../engine/graph-diff/types.ts';
import type { Store } from '../store/store.ts';
import type { TraceRecord } from '../store/types.ts';
import type { GraphView, Params, TraceDiff } from './contract.ts';
import { ApiError } from './errors.ts';
import { nodeId } from './view.ts';

export interface GraphDiffDeps {
  store: Store;
  /** The service's pruned view of a trace (stored, or re-pruned and stored). */
  view(
    traceId: number,
    p: { nodeThreshold?: number; edgeThreshold?: number },
  ): Promise<{ trace: TraceRecord; view: GraphView }>;
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

export async function diffTraces(p: Params<'graphs.diff'>, deps: GraphDiffDeps): Promise<TraceDiff> {
  const a = await deps.view(p.a.traceId, p.a);
  const b = await deps.view(p.b.traceId, p.b);
  const diff: GraphDiff = diffGraphs(
    toDiffGraph(a.trace, a.view, deps.store),
    toDiffGraph(b.trace, b.view, deps.store),
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
  return { ...diff, traces: { a: side(a), b: side(b) }, nLayers: a.view.nLayers };
}

/**
 * `graphs.nodeIds`: every node id of a trace's graph before pruning (for an imported graph: the
 * file's nodes). Compare tells "not in this trace" from "pruned at these thresholds" with it.
 */
export function traceNodeIds(store: Store, traceId: number): { traceId: number; ids: string[] } {
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
