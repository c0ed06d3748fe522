/**
 * The backend behind the API contract: the store, the compute backend (in process, or worker
 * threads: PoolCompute) and the persisted job queue (queue.ts), composed, with the events the
 * API sends. Each domain's methods are in handlers/. Dependencies are injected; nothing here is
 * global, so tests, the server and the Electron main process each build their own.
 */

import type { ComputeBackend } from '../jobs/compute-backend.ts';
import { acquireServiceLock, type ServiceLock } from '../store/lock.ts';
import { SCHEMA_VERSION } from '../store/migrations/index.ts';
import type { Store } from '../store/store.ts';
import type { Handler, HandlerContext, Handlers } from './context.ts';
import {
  API_VERSION,
  type ApiEvents,
  type EventName,
  type MethodName,
  type Params,
  type Result,
} from './contract.ts';
import { ApiError, toApiError } from './errors.ts';
import { annotationsHandlers } from './handlers/annotations.ts';
import { dashboardsJobRun, featuresHandlers } from './handlers/features.ts';
import { graphsHandlers } from './handlers/graphs.ts';
import { interventionJobRun, interventionsHandlers } from './handlers/interventions.ts';
import { libraryHandlers } from './handlers/library.ts';
import { modelsHandlers } from './handlers/models.ts';
import { traceJobRun, tracesHandlers } from './handlers/traces.ts';
import { JobQueue } from './queue.ts';
import { isMethodName, METHOD_NAMES, parseParams } from './schema.ts';

export interface ServiceOptions {
  store: Store;
  compute: ComputeBackend;
  /** Run queued traces (default true; false for a read-only front end). */
  runJobs?: boolean;
  /** Failures of background work that have no caller to return to. */
  onBackgroundError?: (e: unknown) => void;
  /** Minimum time between progress writes to the database (default 500 ms). */
  progressWriteMs?: number;
}

type Listener<E extends EventName> = (data: ApiEvents[E]) => void;

export class WorkbenchService {
  readonly store: Store;
  private readonly compute: ComputeBackend;
  private readonly listeners = new Map<EventName, Set<Listener<EventName>>>();
  private readonly runJobs: boolean;
  private readonly queue: JobQueue;
  private readonly handlers: Handlers<MethodName>;
  private closed = false;
  private started = false;
  private lock: ServiceLock | null = null;

  constructor(private readonly opts: ServiceOptions) {
    this.store = opts.store;
    this.compute = opts.compute;
    this.runJobs = opts.runJobs ?? true;
    const shared = {
      store: this.store,
      compute: this.compute,
      emit: <E extends EventName>(event: E, data: ApiEvents[E]) => this.emit(event, data),
      backgroundError: (e: unknown) => this.opts.onBackgroundError?.(e),
    };
    this.queue = new JobQueue(
      shared,
      {
        trace: traceJobRun(shared),
        intervene: interventionJobRun(shared),
        dashboards: dashboardsJobRun(shared),
      },
      opts.progressWriteMs ?? 500,
    );
    const ctx: HandlerContext = { ...shared, queue: this.queue };
    this.handlers = {
      'server.info': () => ({
        app: 'circuit-workbench',
        apiVersion: API_VERSION,
        schemaVersion: SCHEMA_VERSION,
        dataDir: this.store.dataDir,
      }),
      ...libraryHandlers(ctx),
      ...modelsHandlers(ctx),
      ...tracesHandlers(ctx),
      ...graphsHandlers(ctx),
      ...featuresHandlers(ctx),
      ...interventionsHandlers(ctx),
      ...annotationsHandlers(ctx),
    };
  }

  /**
   * Recovers work a previous process left running, then starts the queue. Only one process may
   * run a library's queue: a second one gets a 'conflict' StoreError naming the first.
   */
  start(): this {
    if (this.started) return this;
    if (this.runJobs) this.lock = acquireServiceLock(this.store.dataDir);
    this.started = true;
    if (this.runJobs) this.queue.start();
    return this;
  }

  // ---- events

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as Listener<EventName>);
    return () => set.delete(listener as Listener<EventName>);
  }

  private emit<E extends EventName>(event: E, data: ApiEvents[E]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        l(data);
      } catch (e) {
        this.opts.onBackgroundError?.(e);
      }
    }
  }

  // ---- calls

  /** Validates and runs a method; every failure is an ApiError. */
  async call<M extends MethodName>(method: M, params: Params<M>): Promise<Result<M>>;
  async call(method: string, params: unknown): Promise<unknown>;
  async call(method: string, params: unknown): Promise<unknown> {
    try {
      if (this.closed) throw new ApiError('conflict', 'the service is shutting down');
      if (!isMethodName(method)) {
        throw new ApiError(
          'unknown_method',
          `unknown method "${String(method).slice(0, 80)}"; known: ${METHOD_NAMES.join(', ')}`,
        );
      }
      const parsed = parseParams(method, params);
      const handler = this.handlers[method] as Handler<typeof method>;
      return await handler(parsed as never);
    } catch (e) {
      throw toApiError(e);
    }
  }

  /** Resolves when the queue is empty and nothing runs (tests, CLI). */
  async idle(): Promise<void> {
    await this.queue.idle();
  }

  /** Stops the queue (a running job goes back to the queue) and closes the compute backend. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.close();
    await this.compute.close();
    this.listeners.clear();
    this.lock?.release();
  }
}
