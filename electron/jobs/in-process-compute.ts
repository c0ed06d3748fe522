/** ComputeBackend on the calling thread (the CLI, tests, `circuit serve --in-process`). */
import fs from 'node:fs';
import path from 'node:path';
import { Attributor } from '../engine/attribution/attribute.ts';
import { DEFAULT_MAX_FEATURE_NODES, type TraceProgress } from '../engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { parseTargetSpecs } from '../engine/attribution/target-json.ts';
import { targetVocabulary } from '../engine/attribution/target-spec.ts';
import { runDashboards } from '../engine/dashboards/run.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import { EngineError } from '../engine/errors.ts';
import {
  closeIntervener,
  type InterventionRequest,
  type InterventionRun,
  type LoadedIntervener,
  runInterventionReusing,
} from '../engine/intervene/intervention-run.ts';
import type { InterventionOutcome } from '../engine/intervene/spec.ts';
import { openModel } from '../engine/model/open-model.ts';
import { assertTranscodersFit } from '../engine/model/transcoder-fit.ts';
import { analyzeGraph, type PruneAnalysis, type PrunedGraph, pruneGraph } from '../engine/pruning/index.ts';
import type { ProviderChoice } from '../engine/runtime/providers.ts';
import { loadTokenizer } from '../engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../engine/transcoders/load.ts';
import {
  type ComputeBackend,
  type DashboardsRequest,
  type DashboardsRun,
  dashboardsProgress,
  type PruneRequest,
  type TraceOutcome,
  type TraceRequest,
} from './compute-backend.ts';

export interface InProcessComputeOptions {
  /** Compiled-graph cache folder (default: the engine's). */
  cacheRoot?: string;
  /** Raw graphs kept for re-pruning, by total adjacency bytes (default 1 GiB). */
  pruneCacheBytes?: number;
  onWarning?: (message: string) => void;
}

/** Runs everything on the calling thread (the CLI, tests, and the server until the job pool exists). */
export class InProcessCompute implements ComputeBackend {
  private readonly pruneCache = new Map<string, { raw: RawAttributionGraph; analysis: PruneAnalysis }>();
  private intervener: LoadedIntervener | null = null;

  constructor(private readonly opts: InProcessComputeOptions = {}) {}

  async trace(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome> {
    const model = openModel(req.checkpointDir);
    const set = (() => {
      try {
        return loadTranscoderSet(req.transcoderDir);
      } catch (e) {
        model.close();
        throw e;
      }
    })();
    let attributor: Attributor | undefined;
    try {
      assertTranscodersFit(model, set);
      const c = model.config;
      const hasTokenizer = fs.existsSync(path.join(model.dir, 'tokenizer.json'));
      const tokenizer = hasTokenizer ? await loadTokenizer(model.dir) : null;
      let tokenIds: number[];
      if (req.tokenIds) tokenIds = req.tokenIds;
      else if (tokenizer) tokenIds = tokenizer.encodePrompt(req.prompt);
      else {
        throw new EngineError(
          'tokenizer',
          'the model has no tokenizer.json: give token ids instead of a prompt',
          {
            file: path.join(model.dir, 'tokenizer.json'),
          },
        );
      }
      if (tokenIds.length < 2)
        throw new EngineError('argument', 'the prompt has no tokens after BOS', { field: 'prompt' });
      if (tokenIds.length > c.maxPositions) {
        throw new EngineError(
          'argument',
          `the prompt is ${tokenIds.length} tokens, beyond the model's ${c.maxPositions}`,
          {
            field: 'prompt',
          },
        );
      }
      const bad = tokenIds.find((t) => t >= c.vocabSize);
      if (bad !== undefined) {
        throw new EngineError('argument', `token id ${bad} is outside the vocabulary (${c.vocabSize})`, {
          field: 'tokenIds',
        });
      }
      const s = req.settings;
      const started = performance.now();
      attributor = await Attributor.create(model, set, {
        provider: s.provider as ProviderChoice,
        cacheRoot: this.opts.cacheRoot,
        onWarning: this.opts.onWarning,
      });
      const compileMs = performance.now() - started;
      const result = await attributor.attribute(
        tokenIds,
        {
          maxNLogits: s.maxNLogits,
          desiredLogitProb: s.desiredLogitProb,
          maxFeatureNodes: s.maxFeatureNodes ?? DEFAULT_MAX_FEATURE_NODES,
          batchSize: s.batchSize,
          targets: s.targets ? parseTargetSpecs(s.targets) : null,
        },
        {
          signal: run.signal,
          targetVocabulary: targetVocabulary(c.vocabSize, tokenizer),
          storesGraph: true, // the service keeps it in the library
          onProgress: (p) => run.onProgress?.({ ...p }),
          tokenToString: tokenizer ? (id) => tokenizer.tokenToString(id) : undefined,
        },
      );
      await result.prepared.runner.release();
      const pruneStart = performance.now();
      const pruned = pruneGraph(result.graph, {
        nodeThreshold: s.nodeThreshold,
        edgeThreshold: s.edgeThreshold,
      });
      const pruneMs = performance.now() - pruneStart;
      return {
        raw: result.graph,
        pruned,
        tokenIds,
        timingsMs: { compile_and_load: compileMs, ...result.timingsMs, prune: pruneMs },
        provider: attributor.provider,
      };
    } finally {
      await attributor?.close();
      set.close();
      model.close();
    }
  }

  async prune(req: PruneRequest): Promise<PrunedGraph> {
    let entry = this.pruneCache.get(req.key);
    if (entry) {
      this.pruneCache.delete(req.key); // re-insert: most recently used last
    } else {
      const raw = req.raw();
      entry = { raw, analysis: analyzeGraph(raw) };
    }
    this.pruneCache.set(req.key, entry);
    const limit = this.opts.pruneCacheBytes ?? 2 ** 30;
    let bytes = 0;
    for (const e of this.pruneCache.values()) bytes += e.raw.adjacency.byteLength;
    for (const [k, e] of this.pruneCache) {
      if (bytes <= limit || k === req.key) break;
      this.pruneCache.delete(k);
      bytes -= e.raw.adjacency.byteLength;
    }
    return pruneGraph(entry.raw, req.options, entry.analysis);
  }

  async intervene(req: InterventionRequest, run: InterventionRun): Promise<InterventionOutcome> {
    return runInterventionReusing(
      this.intervener,
      (l) => {
        this.intervener = l;
      },
      req,
      this.opts,
      run,
    );
  }

  /** Forgets a cached raw graph (its trace was deleted). */
  forget(key: string): void {
    this.pruneCache.delete(key);
  }

  async dashboards(req: DashboardsRequest, run: DashboardsRun): Promise<FeatureRecord[]> {
    const records: FeatureRecord[] = [];
    await runDashboards(
      {
        model: req.checkpointDir,
        transcoders: req.transcoderDir,
        corpus: req.corpus,
        maxTokens: req.maxTokens,
        provider: req.provider,
        cacheRoot: this.opts.cacheRoot,
      },
      {
        signal: run.signal,
        onWarning: this.opts.onWarning,
        onProgress: (x) => run.onProgress?.(dashboardsProgress(x)),
        onRecord: (r) => {
          records.push(r);
        },
      },
    );
    return records;
  }

  async close(): Promise<void> {
    this.pruneCache.clear();
    const l = this.intervener;
    this.intervener = null;
    await closeIntervener(l);
  }
}
