/**
 * Registering a model: open the checkpoint and the transcoders, report every problem (as
 * `circuit inspect` does), and compute the content hashes that identify them. The server runs
 * the check on a worker thread (checkModelFoldersOffThread), since it reads synchronously.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { TRANSCODER_HOOKS } from '../engine/arch/hooks.ts';
import { isEngineError } from '../engine/errors.ts';
import { type OpenedModel, openModel } from '../engine/model/open-model.ts';
import { fingerprintFiles } from '../engine/onnx/compile-cache.ts';
import { loadTranscoderSet } from '../engine/transcoders/load.ts';
import type { TranscoderSet } from '../engine/transcoders/types.ts';
import { transcoderModelProblems } from '../engine/transcoders/validate.ts';
import type { ModelInput, TranscoderSetInput } from '../store/models.ts';
import type { ValidationProblem } from '../store/types.ts';
import { ApiError } from './errors.ts';

function problemOf(e: unknown): ValidationProblem {
  if (!isEngineError(e)) throw e;
  const p: ValidationProblem = { code: e.code, message: e.message };
  if (e.file) p.file = e.file;
  if (e.tensor) p.tensor = e.tensor;
  if (e.field) p.field = e.field;
  return p;
}

/** The files a checkpoint's forward graph reads (config + every tensor file used). */
export function modelFiles(model: OpenedModel): string[] {
  const files = new Set<string>([model.configFile]);
  for (const name of model.expectedShapes.keys()) files.add(model.tensors.info(name).sourceFile);
  return [...files];
}

export function transcoderFiles(set: TranscoderSet): string[] {
  const files = new Set<string>();
  if (set.configFile) files.add(set.configFile);
  for (let l = 0; l < set.nLayers; l++) for (const f of set.layerFiles(l)) files.add(f);
  return [...files];
}

export function transcoderSetInput(set: TranscoderSet): TranscoderSetInput {
  return {
    contentHash: fingerprintFiles(transcoderFiles(set)),
    dir: set.dir,
    kind: set.kind,
    nLayers: set.nLayers,
    dModel: set.dModel,
    dTranscoder: set.dTranscoder,
  };
}

/** The registration record of already opened folders. */
export function modelInputFromOpened(
  model: OpenedModel | null,
  set: TranscoderSet | null,
  dirs: { checkpointDir: string; transcoderDir: string; name?: string },
  problems: ValidationProblem[] = [],
): ModelInput {
  const all = [...problems];
  if (model && set) {
    const c = model.config;
    all.push(
      ...transcoderModelProblems(set, {
        nLayers: c.nLayers,
        hiddenSize: c.hiddenSize,
        family: c.family,
        supportedHooks: TRANSCODER_HOOKS,
      }).map(problemOf),
    );
  }
  const c = model?.config;
  return {
    name: dirs.name ?? path.basename(path.resolve(dirs.checkpointDir)),
    checkpointDir: path.resolve(dirs.checkpointDir),
    transcoderDir: path.resolve(dirs.transcoderDir),
    transcoderSet: set ? transcoderSetInput(set) : null,
    contentHash: model ? fingerprintFiles(modelFiles(model)) : null,
    family: c?.family ?? null,
    nLayers: c?.nLayers ?? null,
    validation: {
      valid: all.length === 0 && model !== null && set !== null,
      problems: all,
      model: c
        ? {
            dir: model!.dir,
            family: c.family,
            modelType: c.modelType,
            layers: c.nLayers,
            hiddenSize: c.hiddenSize,
            vocabSize: c.vocabSize,
            maxPositions: c.maxPositions,
            dtypes: model!.dtypes,
            bytesOnDisk: model!.bytesOnDisk,
            tokenizer: fs.existsSync(path.join(model!.dir, 'tokenizer.json')),
          }
        : null,
      transcoders: set
        ? {
            dir: set.dir,
            kind: set.kind,
            layout: set.layout,
            layers: set.nLayers,
            dModel: set.dModel,
            dTranscoder: set.dTranscoder,
            readHook: set.readHook,
            writeHook: set.writeHook,
            activation: set.activation,
            skip: set.hasSkip,
          }
        : null,
    },
  };
}

/** Opens both folders, validates them and closes them again. */
export function checkModelFolders(dirs: {
  checkpointDir: string;
  transcoderDir: string;
  name?: string;
}): ModelInput {
  const problems: ValidationProblem[] = [];
  let model: OpenedModel | null = null;
  let set: TranscoderSet | null = null;
  try {
    try {
      model = openModel(dirs.checkpointDir);
    } catch (e) {
      problems.push(problemOf(e));
    }
    try {
      set = loadTranscoderSet(dirs.transcoderDir);
    } catch (e) {
      problems.push(problemOf(e));
    }
    return modelInputFromOpened(model, set, dirs, problems);
  } finally {
    set?.close();
    model?.close();
  }
}

/**
 * How long a folder check may take before it is stopped. Headers, sampled hashes and bounded
 * folder walks take seconds even for multi-gigabyte checkpoints; a slow network mount or a
 * pathological folder should fail, not hold a thread for ever.
 */
export const CHECK_TIMEOUT_MS = 120_000;

/** An idle check thread exits after this long (it holds the engine's modules, ~50 MB). */
const CHECK_THREAD_IDLE_MS = 10 * 60_000;

// registers tsx, then runs model-check-thread.ts; the built app starts that thread's bundle (build.ts)
const CHECK_WORKER = new URL('./model-check-worker.mjs', import.meta.url);

type CheckReply = { id: number } & ({ ok: true; result: ModelInput } | { ok: false; message: string });
interface PendingCheck {
  resolve: (r: ModelInput) => void;
  reject: (e: unknown) => void;
}

/**
 * The thread checks run on: started on first use (or by warmModelCheckThread) and kept, since
 * starting one (TypeScript loader, engine modules) takes seconds and a check on a warm one
 * takes what it takes inline. Checks queue on it one at a time; it does not keep the process
 * alive while idle.
 */
interface CheckThread {
  worker: Worker;
  pending: Map<number, PendingCheck>;
  idle?: NodeJS.Timeout;
}
let thread = null as CheckThread | null;
let nextCheckId = 1;

function checkThread(): CheckThread {
  if (thread) return thread;
  const worker = new Worker(CHECK_WORKER);
  const t: CheckThread = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (m: CheckReply) => {
    const p = t.pending.get(m.id);
    if (!p) return;
    t.pending.delete(m.id);
    settleIdle(t);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`model check failed: ${m.message}`));
  });
  const stopped = (why: unknown) => {
    if (thread === t) thread = null;
    clearTimeout(t.idle);
    for (const p of t.pending.values()) p.reject(why);
    t.pending.clear();
  };
  worker.on('error', stopped);
  worker.on('exit', (code) =>
    stopped(
      new ApiError(
        'unavailable',
        `the model check thread stopped (exit ${code}) before this check ran; try again`,
      ),
    ),
  );
  thread = t;
  return t;
}

/** Holds the process open while checks are pending; schedules the idle exit when none are. */
function settleIdle(t: CheckThread): void {
  clearTimeout(t.idle);
  if (t.pending.size > 0) {
    t.worker.ref();
    return;
  }
  t.worker.unref();
  t.idle = setTimeout(() => {
    if (thread === t) thread = null; // a check arriving now starts a fresh thread
    void t.worker.terminate();
  }, CHECK_THREAD_IDLE_MS);
  t.idle.unref();
}

/** Starts the check thread now, so the first registration does not wait for it (server start). */
export function warmModelCheckThread(): void {
  settleIdle(checkThread());
}

/**
 * checkModelFolders on the check thread: opening a checkpoint reads headers, samples files for
 * the content hash and walks folders synchronously, which on the main thread would stall every
 * API call and /health for as long as it takes. Past `timeoutMs` the thread is terminated (a
 * fresh one serves the next check) and the call fails with `unavailable`.
 */
export function checkModelFoldersOffThread(
  dirs: { checkpointDir: string; transcoderDir: string; name?: string },
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<ModelInput> {
  const t = checkThread();
  const id = nextCheckId++;
  return new Promise<ModelInput>((resolve, reject) => {
    const timer = setTimeout(() => {
      t.pending.delete(id);
      if (thread === t) thread = null; // the next check starts a fresh thread
      void t.worker.terminate();
      reject(
        new ApiError(
          'unavailable',
          `checking the model folders took longer than ${timeoutMs / 1000} s and was stopped`,
          { field: 'checkpointDir' },
        ),
      );
    }, timeoutMs);
    t.pending.set(id, {
      resolve: (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    settleIdle(t);
    t.worker.postMessage({ id, dirs: { ...dirs } });
  });
}
