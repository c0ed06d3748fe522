/**
 * Feature dashboards as a job of the service's queue: which model and corpus compute a
 * transcoder set's dashboards, and the status the UI shows (stored count, the latest job and
 * its progress). The job itself runs through the compute backend (worker threads in serve).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { JobRecord } from '../store/jobs.ts';
import type { Store } from '../store/store.ts';
import type { ModelRecord } from '../store/types.ts';
import type { DashboardsStatus, TraceProgress } from './contract.ts';
import { ApiError } from './errors.ts';

export interface DashboardsJobParams {
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
export function defaultCorpus(checkpointDir: string): string | null {
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
export function modelForSet(store: Store, setId: number): ModelRecord {
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

export const isDashboardsJob = (j: JobRecord, setId: number) =>
  j.kind === 'dashboards' && (j.params as Partial<DashboardsJobParams> | null)?.transcoderSetId === setId;

/** The set's newest dashboards job, if any. */
export function latestDashboardsJob(store: Store, setId: number): JobRecord | null {
  return store.jobs.list({ kind: 'dashboards' }).find((j) => isDashboardsJob(j, setId)) ?? null;
}

export function dashboardsStatus(
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
export function checkCorpus(file: string): string {
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
