import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ApiClient, ApiEvents, EventName } from '../../electron/api/contract.ts';
import { WorkbenchService } from '../../electron/api/service.ts';
import { createDirectClient } from '../../electron/api/transports/direct.ts';
import type { PrunedGraph } from '../../electron/engine/pruning/prune.ts';
import type {
  ComputeBackend,
  DashboardsRequest,
  DashboardsRun,
  InterventionRequest,
  InterventionRun,
  PruneRequest,
  TraceOutcome,
  TraceRequest,
} from '../../electron/jobs/compute-backend.ts';
import { InProcessCompute } from '../../electron/jobs/in-process-compute.ts';
import { Store } from '../../electron/store/store.ts';
import { fixturePath } from '../fixtures/tiny-checkpoints.ts';

/** The real in-process compute, keeping what each trace returned (to compare with what was stored). */
export class RecordingCompute implements ComputeBackend {
  readonly inner: InProcessCompute;
  readonly traced: TraceOutcome[] = [];
  prunes = 0;
  constructor(cacheRoot: string) {
    this.inner = new InProcessCompute({ cacheRoot });
  }
  async trace(req: TraceRequest, run: Parameters<ComputeBackend['trace']>[1]): Promise<TraceOutcome> {
    const out = await this.inner.trace(req, run);
    this.traced.push(out);
    return out;
  }
  prune(req: PruneRequest): Promise<PrunedGraph> {
    this.prunes++;
    return this.inner.prune(req);
  }
  intervene(req: InterventionRequest, run: InterventionRun) {
    return this.inner.intervene(req, run);
  }
  dashboards(req: DashboardsRequest, run: DashboardsRun) {
    return this.inner.dashboards(req, run);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export const TINY = {
  checkpointDir: () => fixturePath('tiny-gemma2'),
  transcoderDir: () => path.join(fixturePath('tiny-gemma2'), 'transcoders', 'plt'),
  /** tiny-gemma2's first golden prompt (BOS = 2). */
  tokenIds: [2, 11, 40, 7, 11, 63, 25],
};

export interface Harness {
  dir: string;
  store: Store;
  compute: RecordingCompute;
  service: WorkbenchService;
  client: ApiClient;
  close(): Promise<void>;
}

export function harness(cacheRoot: string, opts: { runJobs?: boolean; dir?: string } = {}): Harness {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cw-api-'));
  const store = Store.open(dir);
  const compute = new RecordingCompute(cacheRoot);
  const service = new WorkbenchService({
    store,
    compute,
    runJobs: opts.runJobs,
    onBackgroundError: (e) => {
      throw e;
    },
  }).start();
  const client = createDirectClient(service);
  return {
    dir,
    store,
    compute,
    service,
    client,
    async close() {
      client.close();
      await service.close();
      store.close();
    },
  };
}

/** Resolves with the first event payload that satisfies `pred`. */
export function nextEvent<E extends EventName>(
  client: ApiClient,
  event: E,
  pred: (d: ApiEvents[E]) => boolean,
  timeoutMs = 60_000,
): Promise<ApiEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event in ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (d) => {
      if (!pred(d)) return;
      clearTimeout(timer);
      off();
      resolve(d);
    });
  });
}

/** Resolves when trace `id` reaches a final status. */
export function settled(client: ApiClient, id: () => number) {
  return nextEvent(
    client,
    'trace.updated',
    (d) => d.trace.id === id() && ['done', 'failed', 'cancelled'].includes(d.trace.status),
  ).then((d) => d.trace);
}

export async function rejection(
  p: Promise<unknown>,
): Promise<{ code: string; message: string; field?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; field?: string };
  }
  throw new Error('expected the call to fail');
}
