/**
 * Arrays faulted in by a worker (runtime/prefaulted.ts): zeroed, shared, and what the main thread
 * writes while the worker touches the pages stays (its touch is a compare-and-swap of 0 for 0).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  PREFAULT_MIN_BYTES,
  prefaultedFloat32,
  transferableBuffers,
} from '../../../electron/engine/runtime/prefaulted.ts';

afterEach(() => vi.unstubAllEnvs());

describe('prefaulted arrays', () => {
  it('are plain below the threshold, shared and zeroed above it, and keep writes made meanwhile', async () => {
    const small = prefaultedFloat32(1000);
    expect(small.array.buffer).toBeInstanceOf(ArrayBuffer);
    await small.ready;

    const n = PREFAULT_MIN_BYTES / 4 + 4096;
    const big = prefaultedFloat32(n);
    expect(big.array.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(big.array.length).toBe(n);
    // Written while the worker runs: at page starts (where it touches) and between them.
    const at = [0, 1, 1023, 1024, 5 * 1024, n - 1024, n - 1];
    for (const [k, i] of at.entries()) big.array[i] = k + 0.5;
    await big.ready;
    for (const [k, i] of at.entries()) expect(big.array[i]).toBe(k + 0.5);
    let nonzero = 0;
    for (let i = 0; i < n; i += 997) if (big.array[i] !== 0 && !at.includes(i)) nonzero++;
    expect(nonzero).toBe(0);
    // Shared memory is shared with a worker, not moved: nothing to transfer.
    expect(transferableBuffers(big.array, small.array)).toEqual([small.array.buffer]);
  });

  it('CIRCUIT_PREFAULT=0 gives a plain array', async () => {
    vi.stubEnv('CIRCUIT_PREFAULT', '0');
    const p = prefaultedFloat32(PREFAULT_MIN_BYTES / 4);
    expect(p.array.buffer).toBeInstanceOf(ArrayBuffer);
    await p.ready;
  });
});
