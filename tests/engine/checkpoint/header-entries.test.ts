/**
 * Issue 14 item 8: a safetensors header of very many tiny entries (1.4M took 21 s and 1.6 GB)
 * is refused before JSON.parse, quickly and in little memory; a header at the limit parses.
 */
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MAX_HEADER_ENTRIES, openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { writeManyEntrySafetensors } from '../../fixtures/bombs.ts';
import { expectEngineError, makeTmpDir, removeDir } from './helpers.ts';

const dir = makeTmpDir('cw-st-entries-');
afterAll(() => removeDir(dir));

it('300k tiny entries are refused quickly, naming the file', () => {
  const file = path.join(dir, 'many.safetensors');
  writeManyEntrySafetensors(file, 300_000);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const err = expectEngineError(() => openSafetensors(file), 'header', file, `${MAX_HEADER_ENTRIES}`);
  const seconds = (performance.now() - t0) / 1000;
  expect(err.file).toBe(file);
  expect(seconds).toBeLessThan(5); // ~0.1 s alone; generous for a loaded CI machine
  expect((process.memoryUsage().rss - rss0) / 2 ** 20).toBeLessThan(100);
});

it('a header at the entry limit still opens', () => {
  const file = path.join(dir, 'limit.safetensors');
  writeManyEntrySafetensors(file, MAX_HEADER_ENTRIES);
  const f = openSafetensors(file);
  try {
    expect(f.has('t0')).toBe(true);
  } finally {
    f.close();
  }
});
