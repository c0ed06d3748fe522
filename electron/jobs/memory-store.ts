/**
 * In-memory JobQueueStore: the pool's queue in every caller today (PoolCompute); what must
 * outlive a restart is the service's own SQLite job table.
 */
import type {
  JobDevice,
  JobError,
  JobId,
  JobListFilter,
  JobProgress,
  JobQueueStore,
  JobRecord,
  JsonValue,
  NewJob,
} from './types.ts';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryJobQueueStore implements JobQueueStore {
  private readonly jobs = new Map<JobId, JobRecord>();
  private nextId = 1;

  enqueue(job: NewJob): JobRecord {
    const r: JobRecord = {
      id: this.nextId++,
      kind: job.kind,
      device: job.device,
      params: clone(job.params),
      priority: job.priority ?? 0,
      traceId: job.traceId ?? null,
      state: 'queued',
      attempts: 0,
      resume: false,
      progress: null,
      result: null,
      error: null,
      createdAt: Date.now(),
      startedAt: null,
      finishedAt: null,
    };
    this.jobs.set(r.id, r);
    return clone(r);
  }

  claim(device: JobDevice, kinds: readonly string[]): JobRecord | null {
    let best: JobRecord | null = null;
    for (const j of this.jobs.values()) {
      if (j.state !== 'queued' || j.device !== device || !kinds.includes(j.kind)) continue;
      if (!best || j.priority > best.priority || (j.priority === best.priority && j.id < best.id)) best = j;
    }
    if (!best) return null;
    best.state = 'running';
    best.startedAt = Date.now();
    best.attempts++;
    return clone(best);
  }

  private running(id: JobId): JobRecord | undefined {
    const j = this.jobs.get(id);
    return j?.state === 'running' ? j : undefined;
  }

  updateProgress(id: JobId, progress: JobProgress): void {
    const j = this.running(id);
    if (j) j.progress = clone(progress);
  }

  complete(id: JobId, result: JsonValue): void {
    const j = this.running(id);
    if (!j) return;
    j.state = 'done';
    j.result = clone(result);
    j.finishedAt = Date.now();
  }

  fail(id: JobId, error: JobError): void {
    const j = this.running(id);
    if (!j) return;
    j.state = 'failed';
    j.error = clone(error);
    j.finishedAt = Date.now();
  }

  cancel(id: JobId): boolean {
    const j = this.jobs.get(id);
    if (!j || !(j.state === 'queued' || j.state === 'running' || j.state === 'interrupted')) return false;
    j.state = 'cancelled';
    j.finishedAt = Date.now();
    return true;
  }

  interrupt(id: JobId): void {
    const j = this.running(id);
    if (!j) return;
    j.state = 'interrupted';
    j.finishedAt = Date.now();
  }

  recoverInterrupted(): JobRecord[] {
    for (const j of this.jobs.values()) {
      if (j.state === 'running') {
        j.state = 'interrupted';
        j.finishedAt = Date.now();
      }
    }
    return [...this.jobs.values()].filter((j) => j.state === 'interrupted').map(clone);
  }

  requeue(id: JobId, opts: { resume: boolean }): boolean {
    const j = this.jobs.get(id);
    if (!j || !(j.state === 'interrupted' || j.state === 'failed' || j.state === 'cancelled')) return false;
    j.state = 'queued';
    j.resume = opts.resume;
    j.progress = null;
    j.result = null;
    j.error = null;
    j.startedAt = null;
    j.finishedAt = null;
    return true;
  }

  get(id: JobId): JobRecord | null {
    const j = this.jobs.get(id);
    return j ? clone(j) : null;
  }

  list(filter: JobListFilter = {}): JobRecord[] {
    const out = [...this.jobs.values()]
      .filter(
        (j) =>
          (!filter.states || filter.states.includes(j.state)) && (!filter.kind || j.kind === filter.kind),
      )
      .sort((a, b) => b.id - a.id);
    return (filter.limit !== undefined ? out.slice(0, filter.limit) : out).map(clone);
  }
}
