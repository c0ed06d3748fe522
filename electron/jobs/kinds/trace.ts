/**
 * Job kind `trace`: one Tracer trace (engine/attribution/tracer.ts) on a worker. Params:
 * TraceJobParams. Result: a JSON summary. Payload (for the caller, e.g. the library): the raw
 * graph and its pruned view, typed arrays moved (not copied) to the main thread. Files are
 * written atomically, so a cancelled or crashed job never leaves half a graph.
 *
 * The worker keeps the last Tracer (compiled graphs, ONNX Runtime sessions) for the next trace
 * of the same model, transcoders and provider.
 */

import path from 'node:path';
import type { TraceSettings } from '../../engine/attribution/defaults.ts';
import { nodeLayout } from '../../engine/attribution/graph-types.ts';
import { type TraceInput, Tracer } from '../../engine/attribution/tracer.ts';
import { outputTarget, writeTraceFiles } from '../../engine/graph-json/output-file.ts';
import { transferableBuffers } from '../../engine/runtime/prefaulted.ts';
import { providerChoice } from '../../engine/runtime/providers.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { isObject, objectParams, paramError } from './params.ts';

export interface TraceJobParams {
  model: string;
  transcoders: string;
  input: TraceInput;
  settings: TraceSettings;
  cacheRoot?: string;
  /** Graph JSON to write. */
  out?: string;
  /** Unpruned adjacency (safetensors) to write. */
  raw?: string;
  /** The graph JSON's slug (default "graph"). */
  slug?: string;
}

/** The params' shape; the values are the Tracer's to check (settings, token ids, provider). */
function traceJobParams(raw: JsonValue): TraceJobParams {
  const v = objectParams(raw, ['model', 'transcoders'], ['cacheRoot', 'out', 'raw', 'slug']);
  const input = v.input;
  if (!isObject(input) || !(typeof input.prompt === 'string' || Array.isArray(input.tokenIds)))
    throw paramError('input', '{prompt} or {tokenIds}');
  if (!isObject(v.settings)) throw paramError('settings', 'an object');
  return v as unknown as TraceJobParams;
}

let warm: Tracer | null = null;

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = traceJobParams(raw);
    // Refused before any work: an output that is not a regular file or a new path.
    if (p.out) outputTarget(p.out, 'out');
    if (p.raw) outputTarget(p.raw, 'raw');
    const opts = {
      provider: providerChoice(p.settings.provider, 'settings.provider'),
      cacheRoot: p.cacheRoot,
      threads: ctx.threads,
      onWarning: ctx.log,
    };
    const previous = warm;
    warm = null; // a failed open leaves nothing half-closed to reuse
    const tracer = await Tracer.reuseOrOpen(previous, p.model, p.transcoders, opts, (x) => ctx.progress(x));
    warm = tracer;
    ctx.throwIfCancelled();
    const t = await tracer.trace(p.input, p.settings, {
      signal: ctx.signal,
      onProgress: (x) => ctx.progress(x),
      storesGraph: true, // the payload goes to the library
    });
    ctx.throwIfCancelled();
    const { tokenToString } = tracer;
    const prompt = 'prompt' in p.input ? p.input.prompt : null;
    const info = { model: tracer.model.dir, transcoders: tracer.set.dir, prompt, settings: t.settings };
    writeTraceFiles(p, t.raw, t.pruned, {
      slug: p.slug ?? 'graph',
      prompt: prompt ?? t.tokenIds.map(tokenToString).join(''),
      modelId: path.basename(tracer.model.dir),
      transcoderSet: tracer.set,
      info,
    });
    const lay = nodeLayout(t.raw.nodes);
    const summary: JsonValue = {
      tokens: t.tokenIds.length,
      tokenIds: t.tokenIds,
      activeFeatures: t.activeFeatures,
      featuresWithRows: lay.nFeatures,
      maxFeatureNodes: t.settings.maxFeatureNodes,
      maxFeatureNodesDefault: p.settings.maxFeatureNodes == null,
      logits: t.logitTokens.map((l) => ({
        tokenId: l.tokenId,
        token: l.label ?? tokenToString(l.tokenId),
        prob: l.prob,
      })),
      unpruned: { nodes: lay.total },
      pruned: { nodes: t.pruned.keptNodes.length, edges: t.pruned.edges.weight.length },
      replacementScore: t.pruned.replacementScore,
      completenessScore: t.pruned.completenessScore,
      provider: t.provider,
      timingsMs: t.timingsMs,
      out: p.out ? path.resolve(p.out) : null,
      raw: p.raw ? path.resolve(p.raw) : null,
    };
    return {
      result: summary,
      payload: { graph: t.raw, pruned: t.pruned },
      transfer: transferableBuffers(t.raw.adjacency),
    };
  },
  async dispose() {
    const t = warm;
    warm = null;
    await t?.close();
  },
};

export default handler;
