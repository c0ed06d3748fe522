/**
 * The service's ComputeBackend (electron/api/compute.ts) on the job pool: traces, re-prunes and
 * interventions run on worker threads, so the main process never blocks on compute, a crash fails one trace
 * instead of the app, and a cancel takes effect within a second.
 *
 * The service keeps its own persisted queue (store.jobs) and calls this backend one request
 * at a time; the pool behind it therefore uses an in-memory queue (the service's rows are the
 * persisted ones). Results come back through the pool's onResult hook, typed arrays moved.
 */

import type { TraceProgress } from '../engine/attribution/defaults.ts';
import type { RawAttributionGraph } from '../engine/attribution/graph-types.ts';
import type { FeatureRecord } from '../engine/dashboards/types.ts';
import { EngineError, isEngineErrorCode } from '../engine/errors.ts';
import type { InterventionOutcome } from '../engine/intervene/spec.ts';
import type { PrunedGraph } from '../engine/pruning/index.ts';
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
import { MemoryJobQueueStore } from './memory-store.ts';
import { JobPool, type JobPoolOptions } from './pool.ts';
import type { JobId, JobRecord, JsonValue } from './types.ts';

/** A failed or cancelled job as the error the in-process backend would have thrown. */
export function jobError(r: JobRecord): Error {
  if (r.state === 'cancelled' || r.state === 'interrupted')
    return new EngineError('cancelled', 'the job was cancelled');
  const code = r.error?.code ?? 'internal';
  const message = r.error?.message ?? `the job ended ${r.state}`;
  return isEngineErrorCode(code) ? new EngineError(code, message) : new Error(message);
}

export interface PoolComputeOptions extends Omit<JobPoolOptions, 'store' | 'onResult'> {
  cacheRoot?: string;
}

export class PoolCompute implements ComputeBackend {
  readonly pool: JobPool;
  private readonly payloads = new Map<JobId, unknown>();
  private readonly ready: Promise<unknown>;

  constructor(private readonly opts: PoolComputeOptions = {}) {
    this.pool = new JobPool({
      ...opts,
      store: new MemoryJobQueueStore(),
      onResult: (job, out) => {
        this.payloads.set(job.id, out.payload);
        return undefined;
      },
    });
    this.ready = this.pool.start();
  }

  /** Waits for a submitted job (cancelled with `signal`), forwarding its progress. */
  private async run(
    job: JobRecord,
    signal: AbortSignal | undefined,
    onProgress?: (p: TraceProgress) => void,
  ): Promise<{ record: JobRecord; payload: unknown }> {
    const onAbort = () => void this.pool.cancel(job.id);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const forward = (e: { id: JobId; progress: TraceProgress }) => {
      if (e.id !== job.id || !onProgress) return;
      const { phase, done, total, etaSeconds } = e.progress;
      onProgress(etaSeconds === undefined ? { phase, done, total } : { phase, done, total, etaSeconds });
    };
    this.pool.on('progress', forward);
    try {
      const record = await this.pool.wait(job.id);
      const payload = this.payloads.get(job.id);
      this.payloads.delete(job.id);
      if (record.state !== 'done') throw jobError(record);
      return { record, payload };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.pool.off('progress', forward);
    }
  }

  async trace(
    req: TraceRequest,
    run: { signal?: AbortSignal; onProgress?: (p: TraceProgress) => void },
  ): Promise<TraceOutcome> {
    await this.ready;
    const s = req.settings;
    const params: JsonValue = {
      model: req.checkpointDir,
      transcoders: req.transcoderDir,
      prompt: req.prompt === '' ? null : req.prompt,
      tokenIds: req.tokenIds,
      maxNLogits: s.maxNLogits,
      desiredLogitProb: s.desiredLogitProb,
      maxFeatureNodes: s.maxFeatureNodes,
      batchSize: s.batchSize,
      nodeThreshold: s.nodeThreshold,
      edgeThreshold: s.edgeThreshold,
      provider: s.provider,
      targets: s.targets ?? null,
      cacheRoot: this.opts.cacheRoot ?? null,
    };
    const job = await this.pool.submit('trace', params);
    const { record, payload } = await this.run(job, run.signal, run.onProgress);
    const p = payload as { graph: RawAttributionGraph; pruned: PrunedGraph };
    const r = record.result as { tokenIds: number[]; timingsMs: Record<string, number>; provider: string };
    return {
      raw: p.graph,
      pruned: p.pruned,
      tokenIds: r.tokenIds,
      timingsMs: r.timingsMs,
      provider: r.provider,
    };
  }

  async prune(req: PruneRequest): Promise<PrunedGraph> {
    await this.ready;
    const raw = req.raw();
    // a copy moves to the worker: the caller may keep (and cache) its own graph
    const adjacency = raw.adjacency.slice();
    const job = await this.pool.submit(
      'reprune',
      {
        nodeThreshold: req.options.nodeThreshold ?? 0.8,
        edgeThreshold: req.options.edgeThreshold ?? 0.98,
        pinned: req.options.pinned ? [...req.options.pinned] : null,
      },
      { inputs: { graph: { ...raw, adjacency } }, transfer: [adjacency.buffer as ArrayBuffer] },
    );
    const { payload } = await this.run(job, undefined);
    return (payload as { pruned: PrunedGraph }).pruned;
  }

  async intervene(req: InterventionRequest, run: InterventionRun): Promise<InterventionOutcome> {
    await this.ready;
    const params: JsonValue = {
      model: req.checkpointDir,
      transcoders: req.transcoderDir,
      tokenIds: req.tokenIds,
      provider: req.provider,
      spec: req.spec as unknown as JsonValue,
      trackTokens: req.trackTokens ?? null,
      cacheRoot: this.opts.cacheRoot ?? null,
    };
    const job = await this.pool.submit('intervene', params);
    const { record } = await this.run(job, run.signal, ({ phase, done, total }) =>
      run.onProgress?.({ phase, done, total }),
    );
    return record.result as unknown as InterventionOutcome;
  }

  async dashboards(req: DashboardsRequest, run: DashboardsRun): Promise<FeatureRecord[]> {
    await this.ready;
    const params: JsonValue = {
      model: req.checkpointDir,
      transcoders: req.transcoderDir,
      corpus: req.corpus,
      provider: req.provider,
      resume: false,
      ...(req.maxTokens !== undefined ? { maxTokens: req.maxTokens } : {}),
      ...(this.opts.cacheRoot ? { cacheRoot: this.opts.cacheRoot } : {}),
    };
    const job = await this.pool.submit('dashboards', params);
    const { payload } = await this.run(job, run.signal, run.onProgress);
    return (payload as { records: FeatureRecord[] }).records;
  }

  async close(): Promise<void> {
    await this.pool.close({ mode: 'cancel' });
  }
}
