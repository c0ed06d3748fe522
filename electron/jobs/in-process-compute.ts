/** ComputeBackend on the calling thread (the CLI, tests, `circuit serve --in-process`). */
import type { TraceProgress } from '../engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import { Tracer } from '../engine/attribution/tracer.ts';
import { runDashboards } from '../engine/dashboards/run.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import {
  closeIntervener,
  type InterventionRequest,
  type InterventionRun,
  type LoadedIntervener,
  runInterventionReusing,
} from '../engine/intervene/intervention-run.ts';
import type { InterventionOutcome } from '../engine/intervene/spec.ts';
import { analyzeGraph, type PruneAnalysis, type PrunedGraph, pruneGraph } from '../engine/pruning/index.ts';
import { providerChoice } from '../engine/runtime/providers.ts';
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

/** Runs everything on the calling thread (the CLI and tests; the app and `serve` use PoolCompute). */
export class InProcessCompute implements ComputeBackend {
  private readonly pruneCache = new Map<string, { raw: RawAttributionGraph; analysis: PruneAnalysis }>();
  private intervener: LoadedIntervener | null = null;
  /** The last model's Tracer (compiled graphs, sessions), kept for the next trace of it. */
  private tracer: Tracer | null = null;
  private traceTurn: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: InProcessComputeOptions = {}) {}

  async trace(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome> {
    // One trace at a time: the next one may replace the Tracer this one is using.
    const turn = this.traceTurn.then(() => this.traceNow(req, run));
    this.traceTurn = turn.catch(() => undefined);
    return turn;
  }

  private async traceNow(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome> {
    const opts = {
      provider: providerChoice(req.settings.provider),
      cacheRoot: this.opts.cacheRoot,
      onWarning: this.opts.onWarning,
    };
    const previous = this.tracer;
    this.tracer = null;
    const tracer = await Tracer.reuseOrOpen(
      previous,
      req.checkpointDir,
      req.transcoderDir,
      opts,
      run.onProgress,
    );
    this.tracer = tracer;
    const input = req.tokenIds ? { tokenIds: req.tokenIds } : { prompt: req.prompt };
    const t = await tracer.trace(input, req.settings, run);
    return {
      raw: t.raw,
      pruned: t.pruned,
      tokenIds: t.tokenIds,
      timingsMs: t.timingsMs,
      provider: t.provider,
    };
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
        checkpoint: req.checkpoint,
        resume: req.resume ?? false,
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
    await this.traceTurn;
    const t = this.tracer;
    this.tracer = null;
    await t?.close();
  }
}
