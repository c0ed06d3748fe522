/**
 * Free-disk checks before large writes: a trace's graph file or raw adjacency can be GBs, and
 * a disk that fills mid-write fails late and leaves a partial file. Writes that know their
 * size ask first and get an error that says what is needed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from './errors.ts';

/** Writes below this size skip the check (a statfs per small file is not worth it). */
export const DISK_CHECK_MIN_BYTES = 64 * 1024 * 1024;

const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

/** Throws EngineError('resources') when `file`'s folder has less than `bytes` free. */
export function assertFreeDisk(file: string, bytes: number, what = 'this file'): void {
  if (bytes < DISK_CHECK_MIN_BYTES) return;
  let free: number;
  try {
    const s = fs.statfsSync(path.dirname(path.resolve(file)));
    free = s.bavail * s.bsize;
  } catch {
    return; // no statfs here (or the folder is missing: the write itself will say so)
  }
  if (free < bytes) {
    throw new EngineError(
      'resources',
      `writing ${what} needs ${gb(bytes)} but only ${gb(free)} is free on its disk`,
      { file },
    );
  }
}
