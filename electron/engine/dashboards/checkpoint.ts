/**
 * Dashboard checkpoints: the whole accumulator state plus the corpus position after the last
 * completed window, as one safetensors file (typed arrays as tensors, scalars in
 * `__metadata__`). Written to a temporary file and renamed, so a crash never leaves half a
 * checkpoint: a restart sees either the previous one or the new one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openSafetensors } from '../checkpoint/safetensors.ts';
import { writeSafetensors } from '../checkpoint/safetensors-writer.ts';
import type { DType } from '../checkpoint/tensor.ts';
import { EngineError } from '../errors.ts';
import type { AccumulatorArrays, AccumulatorScalars, FeatureAccumulator } from './accumulator.ts';

export const CHECKPOINT_FORMAT = 'circuit-workbench-dashboard-checkpoint';

/** Where the corpus stream stands after the last completed window. */
export interface CorpusPosition {
  /** Byte offset of the document to continue with. */
  docOffset: number;
  /** Windows of that document already done. */
  chunk: number;
}

export interface DashboardProgressState {
  fingerprint: string;
  windowsDone: number;
  /** Tokens fed to the model, BOS included. */
  tokensDone: number;
  position: CorpusPosition;
  /** The corpus (or the token budget) is exhausted: only token predictions and output remain. */
  corpusDone: boolean;
  /** Seconds spent in the activation phase over every run so far. */
  activationSeconds: number;
}

const DTYPES: [new (...a: never[]) => ArrayBufferView, DType, number][] = [
  [Float64Array, 'F64', 8],
  [Float32Array, 'F32', 4],
  [Uint16Array, 'U16', 2],
  [Int32Array, 'I32', 4],
];

function dtypeOf(a: ArrayBufferView): { dtype: DType; size: number } {
  for (const [ctor, dtype, size] of DTYPES) if (a instanceof ctor) return { dtype, size };
  throw new Error(`unsupported array type ${a.constructor.name}`);
}

export function saveCheckpoint(file: string, acc: FeatureAccumulator, state: DashboardProgressState): void {
  const tensors = Object.entries(acc.arrays).map(([name, a]: [string, ArrayBufferView]) => {
    const { dtype, size } = dtypeOf(a);
    return {
      name,
      dtype,
      shape: [a.byteLength / size],
      data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    };
  });
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeSafetensors(tmp, tensors, {
      format: CHECKPOINT_FORMAT,
      version: '1',
      state: JSON.stringify(state),
      scalars: JSON.stringify(acc.scalars),
    });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Reads a checkpoint into `acc` and returns its progress state. Throws when the file is not a
 * checkpoint or was made with other settings (its fingerprint differs).
 */
export function loadCheckpoint(
  file: string,
  acc: FeatureAccumulator,
  fingerprint: string,
): DashboardProgressState {
  const store = openSafetensors(file);
  try {
    const meta = store.metadata ?? {};
    if (meta.format !== CHECKPOINT_FORMAT) {
      throw new EngineError('header', 'not a dashboard checkpoint', { file, field: '__metadata__.format' });
    }
    let state: DashboardProgressState;
    let scalars: AccumulatorScalars;
    try {
      state = JSON.parse(meta.state ?? '');
      scalars = JSON.parse(meta.scalars ?? '');
    } catch {
      throw new EngineError('header', 'checkpoint metadata is not JSON', { file, field: '__metadata__' });
    }
    if (state.fingerprint !== fingerprint) {
      throw new EngineError(
        'mismatch',
        'the checkpoint was made with another model, transcoders, corpus or settings; delete it or start over without resuming',
        { file },
      );
    }
    const arrays: Partial<AccumulatorArrays> = {};
    for (const [name, dst] of Object.entries(acc.arrays) as [keyof AccumulatorArrays, ArrayBufferView][]) {
      if (!store.has(name))
        throw new EngineError('missing', 'checkpoint lacks an array', { file, tensor: name });
      const raw = store.readRaw(name);
      const { size } = dtypeOf(dst);
      const Ctor = dst.constructor as new (b: ArrayBufferLike, o: number, n: number) => ArrayBufferView;
      (arrays as Record<string, ArrayBufferView>)[name] = new Ctor(
        raw.buffer,
        raw.byteOffset,
        raw.byteLength / size,
      );
    }
    acc.restore(arrays as AccumulatorArrays, scalars);
    return state;
  } finally {
    store.close();
  }
}
