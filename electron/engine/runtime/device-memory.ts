/**
 * How much memory a GPU provider's device has, where it can be known: ONNX Runtime's providers
 * do not say, so `CIRCUIT_DEVICE_MEMORY_MB` (the device memory the workbench may use) decides
 * when set, else NVIDIA's `nvidia-smi` (first visible GPU: CUDA's device 0, and the adapter
 * WebGPU picks on a one-GPU machine). What it sizes: which weights stay resident on the device
 * (forward-pass.ts) and how many rows one backward run takes (linear-runner.ts).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { EngineError } from '../errors.ts';
import type { ProviderName } from './providers.ts';

export interface DeviceMemory {
  totalBytes: number;
  /** Free when measured (the workbench's own allocations come out of this). */
  freeBytes: number;
  source: 'CIRCUIT_DEVICE_MEMORY_MB' | 'nvidia-smi';
}

const MIB = 1024 * 1024;

/** Parses `nvidia-smi --query-gpu=memory.total,memory.free --format=csv,noheader,nounits` (MiB). */
export function parseNvidiaSmi(
  text: string,
  visible = process.env.CUDA_VISIBLE_DEVICES,
): DeviceMemory | null {
  const rows = text
    .trim()
    .split('\n')
    .map((line) => line.split(',').map((v) => Number(v.trim())));
  // CUDA_VISIBLE_DEVICES=2,3 makes GPU 2 the process's device 0 (a numeric list only; UUIDs: row 0).
  const first = Number((visible ?? '').split(',')[0]);
  const row = rows[Number.isInteger(first) && first >= 0 && first < rows.length && visible ? first : 0];
  if (!row || row.length < 2 || !row.every((v) => Number.isFinite(v) && v > 0)) return null;
  return { totalBytes: row[0] * MIB, freeBytes: row[1] * MIB, source: 'nvidia-smi' };
}

/** Asked again at each model open: what other processes (or models) hold changes. */
function probeNvidiaSmi(): DeviceMemory | null {
  try {
    const out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=memory.total,memory.free', '--format=csv,noheader,nounits'],
      { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return parseNvidiaSmi(out);
  } catch {
    return null; // no NVIDIA driver tools here
  }
}

/** The device memory of a GPU provider, or null on the CPU and where it cannot be known. */
export function queryDeviceMemory(provider: ProviderName): DeviceMemory | null {
  if (provider === 'cpu') return null;
  const env = process.env.CIRCUIT_DEVICE_MEMORY_MB;
  if (env !== undefined && env !== '') {
    const mb = Number(env);
    if (!(Number.isFinite(mb) && mb > 0)) {
      throw new EngineError(
        'argument',
        `CIRCUIT_DEVICE_MEMORY_MB must be a positive number of MiB, got "${env}"`,
        {
          field: 'CIRCUIT_DEVICE_MEMORY_MB',
        },
      );
    }
    return { totalBytes: mb * MIB, freeBytes: mb * MIB, source: 'CIRCUIT_DEVICE_MEMORY_MB' };
  }
  return probeNvidiaSmi();
}

/**
 * Share of the device's free memory that resident weights may take: the rest holds each
 * prompt's backward constants and the runs' activations (linear-runner.ts sizes runs to it).
 */
export const DEVICE_WEIGHT_SHARE = 0.8;

/**
 * Bytes of float32 weights a GPU provider keeps resident on its device: a share of its free
 * memory; where that is unknown, half the machine's memory (unified-memory GPUs share it; a
 * discrete GPU's own is seldom more). The host keeps none of them after upload.
 */
export function deviceResidentBudget(memory: DeviceMemory | null): number {
  return memory ? memory.freeBytes * DEVICE_WEIGHT_SHARE : os.totalmem() / 2;
}
