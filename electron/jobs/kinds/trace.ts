/**
 * Job kind `trace`: attribution of one prompt (text, or token ids when the model folder has
 * no tokenizer) and pruning. Params (JSON): model, transcoders, prompt | tokenIds, and
 * optionally maxNLogits, desiredLogitProb, maxFeatureNodes (default 7500), batchSize, nodeThreshold,
 * edgeThreshold, provider, targets (JSON targets, engine/attribution/target-json.ts, in place of
 * the top logits), cacheRoot, out (graph JSON), raw (unpruned safetensors), slug.
 *
 * Result: a JSON summary. Payload (for the pool's onResult, e.g. the store): the raw graph and
 * its pruned view, typed arrays moved (not copied) to the main thread. Files are written
 * atomically, so a cancelled or crashed job never leaves half a graph.
 *
 * The worker keeps the last model's Attributor (compiled graphs, ONNX Runtime sessions) for
 * the next trace of the same model and transcoders.
 */

import fs from 'node:fs';
import path from 'node:path';
import {
  type AttributionSettings,
  Attributor,
  DEFAULT_ATTRIBUTION_SETTINGS,
} from '../../engine/attribution/attribute.ts';
import { DEFAULT_MAX_FEATURE_NODES } from '../../engine/attribution/defaults.ts';
import { nodeLayout } from '../../engine/attribution/graph-types.ts';
import { writeRawGraph } from '../../engine/attribution/raw-file.ts';
import { parseTargetSpecs, targetSpecsToJson } from '../../engine/attribution/target-json.ts';
import { targetVocabulary } from '../../engine/attribution/target-spec.ts';
import { EngineError } from '../../engine/errors.ts';
import { outputTarget, writeTraceGraphJson } from '../../engine/graph-json/output-file.ts';
import { type OpenedModel, openModel } from '../../engine/model/open-model.ts';
import { assertTranscodersFit } from '../../engine/model/transcoder-fit.ts';
import { pruneGraph } from '../../engine/pruning/index.ts';
import type { ProviderChoice } from '../../engine/runtime/providers.ts';
import { loadTokenizer, type PromptTokenizer, tokenNamer } from '../../engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../engine/transcoders/load.ts';
import type { TranscoderSet } from '../../engine/transcoders/types.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { asParams, optInts, optNum, optStr, str } from './params.ts';

interface Loaded {
  key: string;
  model: OpenedModel;
  set: TranscoderSet;
  attributor: Attributor;
  tokenizer: PromptTokenizer | null;
}

let cached: Loaded | null = null;

async function release(): Promise<void> {
  const c = cached;
  cached = null;
  if (!c) return;
  await c.attributor.close().catch(() => undefined);
  c.set.close();
  c.model.close();
}

async function load(
  modelDir: string,
  tcDir: string,
  provider: ProviderChoice,
  cacheRoot: string | undefined,
  threads: number,
  ctx: JobContext,
): Promise<Loaded> {
  const key = JSON.stringify([
    path.resolve(modelDir),
    path.resolve(tcDir),
    provider,
    cacheRoot ?? null,
    threads,
  ]);
  if (cached?.key === key) return cached;
  await release();
  const model = openModel(modelDir);
  let set: TranscoderSet | undefined;
  try {
    set = loadTranscoderSet(tcDir);
    assertTranscodersFit(model, set);
    let tokenizer: PromptTokenizer | null = null;
    try {
      tokenizer = await loadTokenizer(model.dir);
    } catch {
      tokenizer = null; // token-id prompts still work
    }
    const attributor = await Attributor.create(model, set, {
      provider,
      cacheRoot,
      threads,
      onWarning: ctx.log,
    });
    cached = { key, model, set, attributor, tokenizer };
    return cached;
  } catch (e) {
    set?.close();
    model.close();
    throw e;
  }
}

function writeAtomic(file: string, write: (tmp: string) => void): void {
  const abs = outputTarget(file, 'raw'); // a regular file or a new path; never a FIFO, device…
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.${Date.now()}.tmp`);
  try {
    write(tmp);
    fs.renameSync(tmp, abs);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = asParams(raw);
    const modelDir = str(p, 'model');
    const tcDir = str(p, 'transcoders');
    const prompt = optStr(p, 'prompt');
    const ids = optInts(p, 'tokenIds');
    if (!prompt && !ids)
      throw new EngineError('argument', 'a trace needs a prompt or tokenIds', { field: 'prompt' });
    const settings: AttributionSettings = {
      maxNLogits: optNum(p, 'maxNLogits') ?? DEFAULT_ATTRIBUTION_SETTINGS.maxNLogits,
      desiredLogitProb: optNum(p, 'desiredLogitProb') ?? DEFAULT_ATTRIBUTION_SETTINGS.desiredLogitProb,
      maxFeatureNodes: optNum(p, 'maxFeatureNodes') ?? DEFAULT_MAX_FEATURE_NODES,
      batchSize: optNum(p, 'batchSize') ?? DEFAULT_ATTRIBUTION_SETTINGS.batchSize,
    };
    if (p.targets !== undefined && p.targets !== null) settings.targets = parseTargetSpecs(p.targets);
    const nodeThreshold = optNum(p, 'nodeThreshold') ?? 0.8;
    const edgeThreshold = optNum(p, 'edgeThreshold') ?? 0.98;
    const provider = (optStr(p, 'provider') ?? 'cpu') as ProviderChoice;
    const out = optStr(p, 'out');
    const rawOut = optStr(p, 'raw');
    // Refused before any work: an output that is not a regular file or a new path.
    if (out) outputTarget(out, 'out');
    if (rawOut) outputTarget(rawOut, 'raw');

    ctx.progress({ phase: 'load', done: 0, total: 1 });
    const started = performance.now();
    const L = await load(modelDir, tcDir, provider, optStr(p, 'cacheRoot'), ctx.threads, ctx);
    ctx.throwIfCancelled();
    let tokenIds: number[];
    if (ids) {
      tokenIds = ids;
    } else {
      if (!L.tokenizer)
        throw new EngineError('tokenizer', 'the model folder has no tokenizer: give tokenIds');
      tokenIds = L.tokenizer.encodePrompt(prompt!);
    }
    if (tokenIds.length < 2)
      throw new EngineError('argument', 'the prompt has no tokens after BOS', { field: 'prompt' });
    if (tokenIds.length > L.model.config.maxPositions) {
      throw new EngineError(
        'argument',
        `the prompt is ${tokenIds.length} tokens, beyond the model's ${L.model.config.maxPositions}`,
        { field: 'prompt' },
      );
    }
    L.attributor.forward.validateTokenIds(tokenIds);
    const loadMs = performance.now() - started;
    ctx.progress({ phase: 'load', done: 1, total: 1 });
    const tokenToString = tokenNamer(L.tokenizer);
    const result = await L.attributor.attribute(tokenIds, settings, {
      onProgress: (x) =>
        ctx.progress({
          phase: x.phase,
          done: x.done,
          total: x.total,
          etaSeconds: x.etaSeconds,
          unit: 'batches',
        }),
      signal: ctx.signal,
      tokenToString,
      targetVocabulary: targetVocabulary(L.model.config.vocabSize, L.tokenizer),
      storesGraph: true, // the payload goes to the library
    });
    try {
      ctx.throwIfCancelled();
      ctx.progress({ phase: 'prune', done: 0, total: 1 });
      const t0 = performance.now();
      const pruned = pruneGraph(result.graph, { nodeThreshold, edgeThreshold });
      const pruneMs = performance.now() - t0;
      ctx.progress({ phase: 'prune', done: 1, total: 1 });
      ctx.throwIfCancelled();
      const info = {
        model: L.model.dir,
        transcoders: L.set.dir,
        prompt: prompt ?? null,
        settings: {
          ...settings,
          targets: settings.targets ? targetSpecsToJson(settings.targets) : null,
          nodeThreshold,
          edgeThreshold,
          provider: L.attributor.provider,
        },
      };
      if (out) {
        writeTraceGraphJson(out, result.graph, pruned, {
          slug: optStr(p, 'slug') ?? 'graph',
          prompt: prompt ?? tokenIds.map(tokenToString).join(''),
          modelId: path.basename(L.model.dir),
          transcoderSet: L.set,
          info,
        });
      }
      if (rawOut) writeAtomic(rawOut, (tmp) => writeRawGraph(tmp, result.graph, info));
      const lay = nodeLayout(result.graph.nodes);
      const summary: JsonValue = {
        tokens: tokenIds.length,
        tokenIds,
        activeFeatures: result.prepared.space.nActive,
        featuresWithRows: lay.nFeatures,
        maxFeatureNodes: settings.maxFeatureNodes ?? null,
        maxFeatureNodesDefault: optNum(p, 'maxFeatureNodes') === undefined,
        logits: result.logitTokens.map((t) => ({
          tokenId: t.tokenId,
          token: t.label ?? tokenToString(t.tokenId),
          prob: t.prob,
        })),
        unpruned: { nodes: lay.total },
        pruned: { nodes: pruned.keptNodes.length, edges: pruned.edges.weight.length },
        replacementScore: pruned.replacementScore,
        completenessScore: pruned.completenessScore,
        provider: L.attributor.provider,
        timingsMs: { compile_and_load: loadMs, ...result.timingsMs, prune: pruneMs },
        out: out ? path.resolve(out) : null,
        raw: rawOut ? path.resolve(rawOut) : null,
      };
      return {
        result: summary,
        payload: { graph: result.graph, pruned },
        transfer: [result.graph.adjacency.buffer as ArrayBuffer],
      };
    } finally {
      await result.prepared.runner.release();
    }
  },
  dispose: release,
};

export default handler;
