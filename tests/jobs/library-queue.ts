/**
 * The pool tests run on the library's real persisted queue: electron/store's JobRepository
 * (SQLite, better-sqlite3) behind Store.open, with the database handle exposed so a test can
 * simulate what a dead process leaves behind.
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
} from '../../electron/jobs/types.ts';
import { Store } from '../../electron/store/store.ts';

export class LibraryJobQueue implements JobQueueStore {
  private readonly store: Store;

  /** Opens (creating it) the library in `dataDir`. */
  constructor(dataDir: string) {
    this.store = Store.open(dataDir);
  }

  get db() {
    return this.store.db;
  }

  close(): void {
    this.store.close();
  }

  private get q() {
    return this.store.jobs;
  }

  enqueue(job: NewJob): JobRecord {
    return this.q.enqueue(job);
  }
  claim(device: JobDevice, kinds: readonly string[]): JobRecord | null {
    return this.q.claim(device, kinds);
  }
  updateProgress(id: JobId, progress: JobProgress): void {
    this.q.updateProgress(id, progress);
  }
  complete(id: JobId, result: JsonValue): void {
    this.q.complete(id, result);
  }
  fail(id: JobId, error: JobError): void {
    this.q.fail(id, error);
  }
  cancel(id: JobId): boolean {
    return this.q.cancel(id);
  }
  interrupt(id: JobId): void {
    this.q.interrupt(id);
  }
  recoverInterrupted(): JobRecord[] {
    return this.q.recoverInterrupted();
  }
  requeue(id: JobId, opts: { resume: boolean }): boolean {
    return this.q.requeue(id, opts);
  }
  get(id: JobId): JobRecord | null {
    return this.q.get(id);
  }
  list(filter?: JobListFilter): JobRecord[] {
    return this.q.list(filter);
  }
}
