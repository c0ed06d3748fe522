import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEVICE_WEIGHT_SHARE,
  deviceResidentBudget,
  parseNvidiaSmi,
  queryDeviceMemory,
} from '../../../electron/engine/runtime/device-memory.ts';

const MIB = 2 ** 20;

describe('device memory', () => {
  afterEach(() => vi.unstubAllEnvs());

  it("reads nvidia-smi's CSV: the first visible GPU's total and free MiB", () => {
    const csv = '143771, 143000\n81559, 1200\n';
    expect(parseNvidiaSmi(csv, undefined)).toEqual({
      totalBytes: 143771 * MIB,
      freeBytes: 143000 * MIB,
      source: 'nvidia-smi',
    });
    expect(parseNvidiaSmi(csv, '1,0')?.freeBytes).toBe(1200 * MIB);
    expect(parseNvidiaSmi(csv, 'GPU-8a1c')?.freeBytes).toBe(143000 * MIB); // a UUID: the first row
    expect(parseNvidiaSmi(csv, '7')?.freeBytes).toBe(143000 * MIB);
    expect(parseNvidiaSmi('[N/A], [N/A]\n', undefined)).toBeNull();
    expect(parseNvidiaSmi('', undefined)).toBeNull();
  });

  it('takes CIRCUIT_DEVICE_MEMORY_MB over any probe, and names it when it is bad', () => {
    vi.stubEnv('CIRCUIT_DEVICE_MEMORY_MB', '24576');
    expect(queryDeviceMemory('webgpu')).toEqual({
      totalBytes: 24576 * MIB,
      freeBytes: 24576 * MIB,
      source: 'CIRCUIT_DEVICE_MEMORY_MB',
    });
    expect(queryDeviceMemory('cpu')).toBeNull();
    vi.stubEnv('CIRCUIT_DEVICE_MEMORY_MB', 'lots');
    expect(() => queryDeviceMemory('cuda')).toThrow(/CIRCUIT_DEVICE_MEMORY_MB must be a positive number/);
  });

  it('leaves the resident weights a share of the free memory; half the machine’s when unknown', () => {
    const memory = { totalBytes: 24 * 2 ** 30, freeBytes: 20 * 2 ** 30, source: 'nvidia-smi' as const };
    expect(deviceResidentBudget(memory)).toBe(20 * 2 ** 30 * DEVICE_WEIGHT_SHARE);
    expect(deviceResidentBudget(null)).toBe(os.totalmem() / 2);
  });
});
