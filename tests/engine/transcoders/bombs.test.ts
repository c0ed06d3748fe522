/**
 * Issue 14 item 6: npz zip bombs. A small npz of zeros that declares a huge inflated size, or
 * a GemmaScope layer with an absurd d_sae, is refused at open / load with a typed error naming
 * the file and tensor, quickly and without inflating anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NPZ_BOMB_MIN_BYTES, openNpz } from '../../../electron/engine/checkpoint/npz.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { MAX_FEATURES_PER_LAYER } from '../../../electron/engine/transcoders/validate.ts';
import { writeGemmaScopeFeatureBomb } from '../../fixtures/bombs.ts';
import { engineErrorOf, tempDir, writeNpz } from './helpers.ts';

let root: string;
beforeAll(() => {
  root = tempDir('tc-bomb-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Run `fn`, return its EngineError, the seconds it took and the RSS growth in MiB. */
function measure(fn: () => unknown) {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const err = engineErrorOf(fn);
  const seconds = (performance.now() - t0) / 1000;
  const grewMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  return { err, seconds, grewMiB };
}

describe('npz zip bomb', () => {
  it('a deflated member of zeros inflating far past its size is refused at open', () => {
    const file = path.join(root, 'bomb', 'params.npz');
    const n = (2 * NPZ_BOMB_MIN_BYTES) / 4; // 32 MiB of zeros, ~32 KiB deflated
    writeNpz(file, { W_enc: { data: new Float32Array(n), shape: [1, n] } }, true);
    expect(fs.statSync(file).size).toBeLessThan(256 * 1024);
    const { err, seconds, grewMiB } = measure(() => openNpz(file).close());
    expect(err.code).toBe('bounds');
    expect(err.file).toBe(file);
    expect(err.tensor).toBe('W_enc');
    expect(err.message).toContain('zip bomb');
    expect(seconds).toBeLessThan(1);
    expect(grewMiB).toBeLessThan(16);
  });

  it('a GemmaScope layer with d_sae above 2^20 is refused at load, naming b_enc', () => {
    const dir = path.join(root, 'gemmascope');
    const file = writeGemmaScopeFeatureBomb(dir); // 2^21 features, d = 1: 8 MiB per tensor, zeros
    expect(fs.statSync(file).size).toBeLessThan(256 * 1024);
    const { err, seconds, grewMiB } = measure(() => loadTranscoderSet(dir).close());
    expect(err.code).toBe('bounds');
    expect(err.file).toBe(file);
    expect(err.tensor).toBe('b_enc');
    expect(err.message).toContain(`${MAX_FEATURES_PER_LAYER * 2} features`);
    expect(seconds).toBeLessThan(1);
    expect(grewMiB).toBeLessThan(16);
  });
});
