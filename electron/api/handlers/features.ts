/**
 * A transcoder set's features: labels, search, stored dashboards; and its dashboards computed
 * as a job of the queue (`dashboardsJobRun`): which model and corpus compute them, and the
 * status the UI shows (stored count, the latest job and its progress).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TraceProgress } from '../../engine/attribution/defaults.ts';
import type { JobRecord } from '../../store/jobs.ts';
import type { Store } from '../../store/store.ts';
import type { ModelRecord } from '../../store/types.ts';
import type { DomainHandlers, HandlerContext, ServiceContext } from '../context.ts';
import type { DashboardsStatus } from '../contract.ts';
import { ApiError } from '../errors.ts';
import type { JobQueue } from '../queue.ts';

interface DashboardsJobParams {
  transcoderSetId: number;
  modelId: number;
  corpus: string;
  maxTokens?: number;
}

const CORPUS_EXTENSIONS = ['.txt', '.jsonl'];

/**
 * The corpus a model ships with: the first text (or JSONL) file of its `corpus/` folder, as the
 * embedded demo model has. Models without one need a corpus given explicitly.
 */
function defaultCorpus(checkpointDir: string): string | null {
  const dir = path.join(checkpointDir, 'corpus');
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return null;
  }
  for (const n of names) {
    const f = path.join(dir, n);
    if (CORPUS_EXTENSIONS.includes(path.extname(n).toLowerCase()) && fs.statSync(f).isFile()) return f;
  }
  return null;
}

/** A valid registered model using the set (the newest), which computes its dashboards. */
function modelForSet(store: Store, setId: number): ModelRecord {
  const set = store.models.getTranscoderSet(setId);
  const model = store.models
    .list()
    .filter((m) => m.transcoderSetId === set.id && m.valid)
    .sort((a, b) => b.id - a.id)[0];
  if (!model) {
    throw new ApiError(
      'conflict',
      `no valid registered model uses transcoder set ${set.id} (${set.dir}); register one to compute its dashboards`,
      { field: 'transcoderSetId' },
    );
  }
  return model;
}

const isDashboardsJob = (j: JobRecord, setId: number) =>
  j.kind === 'dashboards' && (j.params as Partial<DashboardsJobParams> | null)?.transcoderSetId === setId;

/** The set's newest dashboards job, if any. */
function latestDashboardsJob(store: Store, setId: number): JobRecord | null {
  return store.jobs.list({ kind: 'dashboards' }).find((j) => isDashboardsJob(j, setId)) ?? null;
}

function dashboardsStatus(
  store: Store,
  setId: number,
  live?: { jobId: number; progress: TraceProgress | null },
): DashboardsStatus {
  const set = store.models.getTranscoderSet(setId);
  const model = store.models.list().find((m) => m.transcoderSetId === set.id && m.valid);
  const job = latestDashboardsJob(store, setId);
  const params = job?.params as Partial<DashboardsJobParams> | undefined;
  const progress =
    live && job && live.jobId === job.id
      ? live.progress
      : job?.progress
        ? { phase: job.progress.phase, done: job.progress.done, total: job.progress.total }
        : null;
  return {
    transcoderSetId: set.id,
    stored: store.features.dashboardCount(set.id),
    total: set.nLayers * set.dTranscoder,
    defaultCorpus: model ? defaultCorpus(model.checkpointDir) : null,
    job: job
      ? {
          id: job.id,
          state: job.state,
          corpus: params?.corpus ?? '',
          progress: job.state === 'running' || job.state === 'queued' ? progress : null,
          error: job.error ? { code: job.error.code ?? 'failed', message: job.error.message } : null,
        }
      : null,
  };
}

/** Checks a corpus given by the user: an existing regular file, named in the error. */
function checkCorpus(file: string): string {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new ApiError('invalid_params', `invalid params: corpus ${abs} does not exist`, { field: 'corpus' });
  }
  if (!st.isFile()) {
    throw new ApiError('invalid_params', `invalid params: corpus ${abs} is not a file`, { field: 'corpus' });
  }
  return abs;
}

/** Dashboards progress events at most this often within a phase (each reads the status). */
const DASHBOARDS_EVENT_MS = 200;

export function featuresHandlers(ctx: HandlerContext): DomainHandlers<'features'> {
  return {
    'features.get': (p) => {
      ctx.store.models.getTranscoderSet(p.transcoderSetId);
      return ctx.store.features.get(p.transcoderSetId, p.layer, p.index);
    },
    'features.setLabel': (p) => {
      const set = ctx.store.models.getTranscoderSet(p.transcoderSetId);
      if (p.layer >= set.nLayers) {
        throw new ApiError('invalid_params', `layer ${p.layer} is beyond the set's ${set.nLayers} layers`, {
          field: 'layer',
        });
      }
      const r = ctx.store.features.setLabel(p.transcoderSetId, p.layer, p.index, p.label.trim());
      ctx.emit('library.changed', { entity: 'feature', id: `${p.transcoderSetId}:${p.layer}:${p.index}` });
      return r;
    },
    'features.search': (p) => {
      ctx.store.models.getTranscoderSet(p.transcoderSetId);
      return ctx.store.features.search(p.transcoderSetId, p.query, p.limit);
    },
    'features.putDashboards': (p) => {
      const set = ctx.store.models.getTranscoderSet(p.transcoderSetId);
      for (const [i, r] of p.records.entries()) {
        if (r.layer >= set.nLayers) {
          throw new ApiError(
            'invalid_params',
            `invalid params: records[${i}].layer ${r.layer} is out of range; transcoder set ${set.id} has ${set.nLayers} layers`,
            { field: `records[${i}].layer` },
          );
        }
        if (r.index >= set.dTranscoder) {
          throw new ApiError(
            'invalid_params',
            `invalid params: records[${i}].index ${r.index} is out of range; transcoder set ${set.id} has ${set.dTranscoder} features per layer`,
            { field: `records[${i}].index` },
          );
        }
      }
      ctx.store.features.putDashboards(
        p.transcoderSetId,
        p.records.map((r) => ({ layer: r.layer, index: r.index, dashboard: r })),
      );
      ctx.emit('library.changed', { entity: 'feature', id: `${p.transcoderSetId}:*` });
      return { stored: p.records.length };
    },
    'features.dashboardsStatus': (p) => dashboardsStatus(ctx.store, p.transcoderSetId),
    'features.computeDashboards': (p) => {
      const set = ctx.store.models.getTranscoderSet(p.transcoderSetId);
      const active = latestDashboardsJob(ctx.store, set.id);
      if (active && (active.state === 'queued' || active.state === 'running'))
        return dashboardsStatus(ctx.store, set.id);
      if (p.ifMissing && ctx.store.features.dashboardCount(set.id) > 0)
        return dashboardsStatus(ctx.store, set.id);
      if (!ctx.compute.dashboards) {
        throw new ApiError('unsupported', 'this backend cannot compute dashboards', {
          field: 'transcoderSetId',
        });
      }
      const model = modelForSet(ctx.store, set.id);
      const corpus = p.corpus === undefined ? defaultCorpus(model.checkpointDir) : checkCorpus(p.corpus);
      if (corpus === null) {
        throw new ApiError(
          'invalid_params',
          `invalid params: give corpus (a text file, one document per line): model ${model.name} has no corpus/ folder`,
          { field: 'corpus' },
        );
      }
      const params: DashboardsJobParams = { transcoderSetId: set.id, modelId: model.id, corpus };
      if (p.maxTokens !== undefined) params.maxTokens = p.maxTokens;
      ctx.store.jobs.enqueue({ kind: 'dashboards', device: 'cpu', params: { ...params } });
      const status = dashboardsStatus(ctx.store, set.id);
      ctx.emit('dashboards.updated', status);
      ctx.queue.kick();
      return status;
    },
    'features.cancelDashboards': async (p) => {
      ctx.store.models.getTranscoderSet(p.transcoderSetId);
      const job = latestDashboardsJob(ctx.store, p.transcoderSetId);
      if (job?.state === 'queued') ctx.store.jobs.cancel(job.id);
      else if (job?.state === 'running' && ctx.queue.running?.dashboardsSetId === p.transcoderSetId)
        await ctx.queue.stop('cancel', 5000);
      const status = dashboardsStatus(ctx.store, p.transcoderSetId);
      if (job) ctx.emit('dashboards.updated', status);
      return status;
    },
  };
}

/**
 * A transcoder set's dashboards: the set's model over the corpus, all records stored in one
 * transaction at the end (a cancelled run stores nothing), `dashboards.updated` throughout.
 * The run checkpoints its progress in the job's checkpoint file (store.jobCheckpoint): a job
 * stopped by a shutdown or a crash continues from there when the service starts again (the
 * queue requeues it with `resume`); a cancelled or failed one's checkpoint is deleted.
 */
export function dashboardsJobRun(ctx: ServiceContext) {
  return async (job: JobRecord, queue: JobQueue): Promise<void> => {
    const { store, compute } = ctx;
    const p = job.params as unknown as DashboardsJobParams;
    const model = store.models.find(p.modelId);
    const set = store.models.findTranscoderSet(p.transcoderSetId);
    if (!model || !set || !compute.dashboards) {
      store.jobs.fail(job.id, { code: 'not_found', message: 'the model or transcoder set is gone' });
      if (set) ctx.emit('dashboards.updated', dashboardsStatus(store, set.id));
      return;
    }
    const update = (progress: TraceProgress | null) =>
      ctx.emit('dashboards.updated', dashboardsStatus(store, set.id, { jobId: job.id, progress }));
    const work = {
      dashboardsSetId: set.id,
      cancelMessage: `the dashboards of transcoder set ${set.id} were cancelled`,
    };
    const checkpoint = store.jobCheckpoint(job.id);
    // A cancelled or failed run will not continue: its checkpoint goes.
    const ended = () => {
      fs.rmSync(checkpoint, { force: true });
      update(null);
    };
    const outcomes = { exists: () => true, requeue: () => {}, cancelled: ended, failed: ended };
    await queue.run(job, work, outcomes, async (running) => {
      // A cancel stops the run between windows (the runner keeps its worker until then, and never
      // terminates one inside ONNX Runtime); a run that ends despite it is discarded.
      const { signal } = running.controller;
      update(null);
      const report = queue.throttle((progress) => {
        store.jobs.updateProgress(job.id, progress);
        update(progress);
      }, DASHBOARDS_EVENT_MS);
      const records = await compute.dashboards!(
        {
          checkpointDir: model.checkpointDir,
          transcoderDir: model.transcoderDir,
          corpus: p.corpus,
          maxTokens: p.maxTokens,
          provider: 'cpu',
          checkpoint,
          resume: job.resume,
        },
        { signal, onProgress: report },
      );
      if (signal.aborted) throw signal.reason;
      store.db.transaction(() => {
        store.features.putDashboards(
          set.id,
          records
            .filter((r) => r.layer < set.nLayers && r.index < set.dTranscoder)
            .map((r) => ({ layer: r.layer, index: r.index, dashboard: r })),
        );
        store.jobs.complete(job.id, { stored: records.length });
      })();
      update(null);
      ctx.emit('library.changed', { entity: 'feature', id: `${set.id}:*` });
    });
  };
}
