/**
 * Job kind `reprune`: prune a stored raw graph at other thresholds. The raw graph comes as a
 * transient input (`inputs.graph`, a RawAttributionGraph moved from the main thread, e.g. read
 * from the store) or from a raw safetensors file (`params.raw`). Params: RepruneJobParams.
 *
 * Result: the pruned view's counts and scores; payload: the PrunedGraph (arrays moved).
 */
import { nodeLayout, type RawAttributionGraph } from '../../engine/attribution/graph-types.ts';
import { readRawGraph } from '../../engine/attribution/raw-file.ts';
import { EngineError } from '../../engine/errors.ts';
import { pruneGraph } from '../../engine/pruning/index.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { objectParams, paramError } from './params.ts';

export interface RepruneJobParams {
  nodeThreshold?: number;
  edgeThreshold?: number;
  /** Raw node indices kept whatever their influence. */
  pinned?: number[] | null;
  /** A raw safetensors file, when no graph comes as inputs.graph. */
  raw?: string;
}

/** The params' shape; the thresholds and pinned indices are pruneGraph's to check. */
function repruneJobParams(raw: JsonValue): RepruneJobParams {
  const v = objectParams(raw, [], ['raw']);
  if (v.pinned !== undefined && v.pinned !== null && !Array.isArray(v.pinned))
    throw paramError('pinned', 'a list');
  return v as RepruneJobParams;
}

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = repruneJobParams(raw);
    ctx.progress({ phase: 'load', done: 0, total: 1 });
    const input = (ctx.inputs as { graph?: RawAttributionGraph } | undefined)?.graph;
    const file = p.raw;
    let graph: RawAttributionGraph;
    if (input) graph = input;
    else if (file) graph = readRawGraph(file).graph;
    else
      throw new EngineError('argument', 'reprune needs a raw graph (inputs.graph or params.raw)', {
        field: 'raw',
      });
    ctx.throwIfCancelled();
    ctx.progress({ phase: 'prune', done: 0, total: 1 });
    const pruned = pruneGraph(graph, {
      nodeThreshold: p.nodeThreshold,
      edgeThreshold: p.edgeThreshold,
      pinned: p.pinned ?? undefined,
    });
    ctx.progress({ phase: 'prune', done: 1, total: 1 });
    return {
      result: {
        nodes: pruned.keptNodes.length,
        edges: pruned.edges.weight.length,
        unprunedNodes: nodeLayout(graph.nodes).total,
        nodeThreshold: pruned.nodeThreshold,
        edgeThreshold: pruned.edgeThreshold,
        replacementScore: pruned.replacementScore,
        completenessScore: pruned.completenessScore,
      },
      payload: { pruned },
      transfer: [
        pruned.keptNodes.buffer as ArrayBuffer,
        pruned.nodeInfluence.buffer as ArrayBuffer,
        pruned.edges.target.buffer as ArrayBuffer,
        pruned.edges.source.buffer as ArrayBuffer,
        pruned.edges.weight.buffer as ArrayBuffer,
      ].filter((b, i, all) => all.indexOf(b) === i),
    };
  },
};

export default handler;
