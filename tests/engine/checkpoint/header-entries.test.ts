/**
 * Issue 14 item 8: a safetensors header of very many tiny entries (1.4M took 21 s and 1.6 GB)
 * is refused before JSON.parse, quickly and in little memory; a header at the limit parses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MAX_HEADER_ENTRIES, openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { expectEngineError, makeTmpDir, removeDir } from './helpers.ts';

const dir = makeTmpDir('cw-st-entries-');
afterAll(() => removeDir(dir));

function manyEntries(file: string, n: number): void {
  const parts: string[] = [];
  for (let i = 0; i < n; i++)
    parts.push(`"t${i}":{"dtype":"F32","shape":[1],"data_offsets":[${i * 4},${i * 4 + 4}]}`);
  const json = Buffer.from(`{${parts.join(',')}}`);
  const buf = Buffer.alloc(8 + json.length + n * 4);
  buf.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(buf, 8);
  fs.writeFileSync(file, buf);
}

it('300k tiny entries are refused quickly, naming the file', () => {
  const file = path.join(dir, 'many.safetensors');
  manyEntries(file, 300_000);
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
  manyEntries(file, MAX_HEADER_ENTRIES);
  const f = openSafetensors(file);
  try {
    expect(f.has('t0')).toBe(true);
  } finally {
    f.close();
  }
});
