/**
 * A job worker: runs one job at a time for the runner (runner.ts). Job kinds are modules loaded on first
 * use (their `default` export is a JobHandler) and kept for the worker's life, so a kind can
 * keep models and ONNX Runtime sessions warm between jobs.
 *
 * Cancel is cooperative (the job's AbortSignal). The runner terminates the worker only when a
 * job does not stop within its bounds, and never inside ONNX Runtime's native code: the guard it
 * shares (`workerData.nativeGuard`) is installed here (engine/runtime/native-section.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EngineError, isEngineError } from '../engine/errors.ts';
import { installNativeGuard } from '../engine/runtime/native-section.ts';
import type { FromWorker, JobContext, JobHandler, JobProgress, RunJobMessage, ToWorker } from './types.ts';
import { packViews, unpackViews } from './views.ts';

const port = parentPort;
if (!port) throw new Error('worker-main.ts must run in a worker thread');
const guard = (workerData as { nativeGuard?: SharedArrayBuffer } | null)?.nativeGuard;
if (guard) installNativeGuard(guard);

const handlers = new Map<string, Promise<JobHandler>>();
let current: { id: number; controller: AbortController } | null = null;

const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

function loadHandler(module: string): Promise<JobHandler> {
  let h = handlers.get(module);
  if (!h) {
    h = import(module).then((m) => {
      const handler = (m.default ?? m.handler) as JobHandler | undefined;
      if (!handler || typeof handler.run !== 'function') {
        throw new Error(`job module ${module} has no default export with a run() method`);
      }
      return handler;
    });
    handlers.set(module, h);
    h.catch(() => handlers.delete(module));
  }
  return h;
}

/** Progress throttled to ~10 messages/s (phase changes and completions always pass), with ETA. */
function progressReporter(id: number) {
  let phase = '';
  let phaseStart = 0;
  let doneAtStart = 0;
  let last = 0;
  return (p: JobProgress) => {
    const now = performance.now();
    if (p.phase !== phase) {
      phase = p.phase;
      phaseStart = now;
      doneAtStart = p.done;
    } else if (now - last < 100 && p.done < p.total) {
      return;
    }
    last = now;
    let eta = p.etaSeconds;
    if (eta === undefined && p.done > doneAtStart && p.total >= p.done) {
      eta = ((now - phaseStart) / 1000 / (p.done - doneAtStart)) * (p.total - p.done);
    }
    post({ type: 'progress', id, progress: eta === undefined ? { ...p } : { ...p, etaSeconds: eta } });
  };
}

async function runJob({ job }: RunJobMessage): Promise<void> {
  const controller = new AbortController();
  current = { id: job.id, controller };
  const ctx: JobContext = {
    jobId: job.id,
    kind: job.kind,
    device: job.device,
    signal: controller.signal,
    threads: job.threads,
    inputs: unpackViews(job.inputs),
    progress: progressReporter(job.id),
    throwIfCancelled() {
      if (controller.signal.aborted) throw new EngineError('cancelled', 'the job was cancelled');
    },
    log: (message) => post({ type: 'log', id: job.id, message }),
  };
  try {
    const handler = await loadHandler(job.module);
    const out = await handler.run(job.params, ctx);
    // a job that finished despite a late cancel is done: its output is complete
    // views as records: structured clone truncates views over more than 4 GiB (views.ts)
    post({ type: 'done', id: job.id, result: out.result, payload: packViews(out.payload) }, out.transfer);
  } catch (e) {
    if (controller.signal.aborted) {
      post({
        type: 'aborted',
        id: job.id,
        reason: controller.signal.reason === 'shutdown' ? 'shutdown' : 'cancel',
      });
    } else {
      const err = e as Error;
      post({
        type: 'failed',
        id: job.id,
        error: {
          message: err?.message ?? String(e),
          code: isEngineError(e) ? e.code : 'internal',
          stack: err?.stack,
        },
      });
    }
  } finally {
    current = null;
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'run':
      void runJob(msg);
      break;
    case 'cancel':
      if (current?.id === msg.id) current.controller.abort(msg.reason);
      break;
    case 'dispose':
      void (async () => {
        for (const h of handlers.values()) {
          try {
            await (await h).dispose?.();
          } catch {
            // a kind that fails to clean up must not keep the worker alive
          }
        }
        post({ type: 'disposed' });
      })();
      break;
  }
});

post({ type: 'ready' });
