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

const CHECK_WORKER = new URL('./model-check-worker.mjs', import.meta.url);

type CheckReply = { ok: true; result: ModelInput } | { ok: false; message: string };

/**
 * checkModelFolders on a worker thread of its own: opening a checkpoint reads headers, samples
 * files for the content hash and walks folders synchronously, which on the main thread would
 * stall every API call and /health for as long as it takes. Past `timeoutMs` the thread is
 * terminated and the call fails with `unavailable`.
 */
export function checkModelFoldersOffThread(
  dirs: { checkpointDir: string; transcoderDir: string; name?: string },
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<ModelInput> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CHECK_WORKER, { workerData: { ...dirs } });
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      settle();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new ApiError(
              'unavailable',
              `checking the model folders took longer than ${timeoutMs / 1000} s and was stopped`,
              { field: 'checkpointDir' },
            ),
          ),
        ),
      timeoutMs,
    );
    worker.once('message', (m: CheckReply) =>
      finish(() => (m.ok ? resolve(m.result) : reject(new Error(`model check failed: ${m.message}`)))),
    );
    worker.once('error', (e) => finish(() => reject(e)));
    worker.once('exit', (code) =>
      finish(() => reject(new Error(`the model check thread exited (${code}) without a result`))),
    );
  });
}
