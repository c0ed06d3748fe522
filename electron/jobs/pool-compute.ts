/**
 * The service's ComputeBackend on worker threads (runner.ts): traces, re-prunes, interventions
 * and dashboards run off the main thread, so it never blocks on compute, a crash fails one job
 * instead of the app, and a cancel takes effect within a second. Typed arrays move between
 * threads, not copied.
 */

import type { TraceProgress } from '../engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import type { InterventionOutcome } from '../engine/intervene/spec.ts';
import type { PrunedGraph } from '../engine/pruning/index.ts';
import { transferableBuffers } from '../engine/runtime/prefaulted.ts';
import type {
  ComputeBackend,
  DashboardsRequest,
  DashboardsRun,
  InterventionRequest,
  InterventionRun,
  PruneRequest,
  TraceOutcome,
  TraceRequest,
} from './compute-backend.ts';
import type { DashboardsJobParams } from './kinds/dashboards.ts';
import type { InterveneJobParams } from './kinds/intervene.ts';
import type { TraceJobParams } from './kinds/trace.ts';
import { type RunnerOptions, type RunOptions, type RunOutput, WorkerRunner } from './runner.ts';
import type { JsonValue } from './types.ts';

export interface PoolComputeOptions extends RunnerOptions {
  cacheRoot?: string;
}

export class PoolCompute implements ComputeBackend {
  readonly runner: WorkerRunner;

  constructor(private readonly opts: PoolComputeOptions = {}) {
    this.runner = new WorkerRunner(opts);
  }

  /** Runs a job on the workers, its progress forwarded as the engine's TraceProgress. */
  private run(
    kind: string,
    params: JsonValue,
    signal: AbortSignal | undefined,
    onProgress?: (p: TraceProgress) => void,
    extra: Pick<RunOptions, 'inputs' | 'transfer'> = {},
  ): Promise<RunOutput> {
    return this.runner.run(kind, params, {
      ...extra,
      signal,
      onProgress: onProgress
        ? ({ phase, done, total, etaSeconds }) =>
            onProgress(etaSeconds === undefined ? { phase, done, total } : { phase, done, total, etaSeconds })
        : undefined,
    });
  }

  async trace(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome> {
    const params: TraceJobParams = {
      model: req.checkpointDir,
      transcoders: req.transcoderDir,
      input: req.tokenIds ? { tokenIds: req.tokenIds } : { prompt: req.prompt },
      settings: req.settings,
      ...(this.opts.cacheRoot ? { cacheRoot: this.opts.cacheRoot } : {}),
    };
    const { result, payload } = await this.run(
      'trace',
      params as unknown as JsonValue,
      run.signal,
      run.onProgress,
    );
    const p = payload as { graph: RawAttributionGraph; pruned: PrunedGraph };
    const r = result as { tokenIds: number[]; timingsMs: Record<string, number>; provider: string };
    return {
      raw: p.graph,
      pruned: p.pruned,
      tokenIds: r.tokenIds,
      timingsMs: r.timingsMs,
      provider: r.provider,
    };
  }

  async prune(req: PruneRequest): Promise<PrunedGraph> {
    const raw = req.raw();
    // a copy moves to the worker: the caller may keep (and cache) its own graph
    const adjacency = raw.adjacency.slice();
    const { payload } = await this.run(
      'reprune',
      {
        // absent thresholds take pruneGraph's defaults, in the worker
        ...(req.options.nodeThreshold !== undefined ? { nodeThreshold: req.options.nodeThreshold } : {}),
        ...(req.options.edgeThreshold !== undefined ? { edgeThreshold: req.options.edgeThreshold } : {}),
        pinned: req.options.pinned ? [...req.options.pinned] : null,
      },
      undefined,
      undefined,
      { inputs: { graph: { ...raw, adjacency } }, transfer: transferableBuffers(adjacency) },
    );
    return (payload as { pruned: PrunedGraph }).pruned;
  }

  async intervene(req: InterventionRequest, run: InterventionRun): Promise<InterventionOutcome> {
    const params: InterveneJobParams = {
      ...req,
      ...(this.opts.cacheRoot ? { cacheRoot: this.opts.cacheRoot } : {}),
    };
    const { result } = await this.run(
      'intervene',
      params as unknown as JsonValue,
      run.signal,
      ({ phase, done, total }) => run.onProgress?.({ phase, done, total }),
    );
    return result as unknown as InterventionOutcome;
  }

  async dashboards(req: DashboardsRequest, run: DashboardsRun): Promise<FeatureRecord[]> {
    const params: DashboardsJobParams = {
      model: req.checkpointDir,
      transcoders: req.transcoderDir,
      corpus: req.corpus,
      provider: req.provider,
      resume: req.resume ?? false,
      ...(req.checkpoint !== undefined ? { checkpoint: req.checkpoint } : {}),
      ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {}),
      ...(this.opts.cacheRoot ? { cacheRoot: this.opts.cacheRoot } : {}),
    };
    const { payload } = await this.run(
      'dashboards',
      params as unknown as JsonValue,
      run.signal,
      run.onProgress,
    );
    return (payload as { records: FeatureRecord[] }).records;
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}
