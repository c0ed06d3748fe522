/**
 * What the service's parts share (the handlers of each domain, the queue, the graph views): the
 * store, the compute backend, and the service's events. The service builds one per instance.
 */
import type { ComputeBackend } from '../jobs/compute-backend.ts';
import type { Store } from '../store/store.ts';
import type { InterventionRecord, TraceRecord } from '../store/types.ts';
import type { ApiEvents, EventName, MethodName, Params, Result } from './contract.ts';
import type { JobQueue } from './queue.ts';

export interface ServiceContext {
  readonly store: Store;
  readonly compute: ComputeBackend;
  emit<E extends EventName>(event: E, data: ApiEvents[E]): void;
  /** Failures of background work that have no caller to return to. */
  backgroundError(e: unknown): void;
}

/** The handlers' context: the shared parts and the queue their jobs go to. */
export interface HandlerContext extends ServiceContext {
  readonly queue: JobQueue;
}

export type Handler<M extends MethodName> = (p: Params<M>) => Result<M> | Promise<Result<M>>;
export type Handlers<M extends MethodName> = { [K in M]: Handler<K> };
/** The handlers of one domain: every method named `<domain>.…`. */
export type DomainHandlers<D extends string> = Handlers<Extract<MethodName, `${D}.${string}`>>;

export function traceUpdated(ctx: ServiceContext, trace: TraceRecord): TraceRecord {
  ctx.emit('trace.updated', { trace });
  return trace;
}

export function interventionUpdated(
  ctx: ServiceContext,
  intervention: InterventionRecord,
): InterventionRecord {
  ctx.emit('intervention.updated', { intervention });
  return intervention;
}
