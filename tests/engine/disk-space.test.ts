import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeSafetensors } from '../../electron/engine/checkpoint/safetensors-writer.ts';
import { assertFreeDisk, DISK_CHECK_MIN_BYTES } from '../../electron/engine/disk-space.ts';
import { EngineError } from '../../electron/engine/errors.ts';

afterEach(() => vi.restoreAllMocks());

/** statfs reporting `free` bytes available. */
function diskWithFree(free: number) {
  const real = fs.statfsSync(os.tmpdir());
  return vi
    .spyOn(fs, 'statfsSync')
    .mockReturnValue({ ...real, bsize: 4096, bavail: Math.floor(free / 4096) });
}

describe('free-disk check before large writes', () => {
  it('refuses a write the disk cannot hold, naming the file and both sizes, and writes nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-disk-'));
    try {
      const file = path.join(dir, 'big.safetensors');
      diskWithFree(10 * 1024 * 1024);
      // 80 MiB of zeros (a U8 tensor, so nothing is encoded) against 10 MiB free
      const data = new Uint8Array(80 * 1024 * 1024);
      let err: unknown;
      try {
        writeSafetensors(file, [{ name: 'adjacency', dtype: 'U8', shape: [data.length], data }]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('resources');
      expect((err as EngineError).message).toMatch(/needs 0\.08 GB but only 0\.01 GB is free/);
      expect((err as EngineError).file).toBe(file);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes when there is room, and skips the check for small writes', () => {
    const spy = diskWithFree(1e12);
    expect(() => assertFreeDisk('/x/y', 1e9)).not.toThrow();
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockClear();
    assertFreeDisk('/x/y', DISK_CHECK_MIN_BYTES - 1);
    expect(spy).not.toHaveBeenCalled();
  });
});
