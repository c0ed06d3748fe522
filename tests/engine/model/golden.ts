/** Loading and comparing the PyTorch golden values (tests/golden/README.md). */
import fs from 'node:fs';
import path from 'node:path';

export interface GoldenArray {
  shape: number[];
  data: number[];
}

export interface GoldenCase {
  token_ids: number[];
  logits: number[][];
  logits_pre_softcap: number[][];
  hooks: Record<string, GoldenArray>;
  transcoders?: Record<
    string,
    { activations: Record<string, GoldenArray>; reconstruction_error: Record<string, GoldenArray> }
  >;
}

export interface GoldenFile {
  checkpoint: string;
  cases: GoldenCase[];
}

export const GOLDEN_DIR = path.resolve(import.meta.dirname, '../../golden');

export function loadGolden(name: string): GoldenFile {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, `${name}.json`), 'utf8')) as GoldenFile;
}

export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= m)) m = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
  }
  return m;
}
