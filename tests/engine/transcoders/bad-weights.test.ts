/**
 * Issue 14 item 8: transcoder b_enc / b_dec / threshold holding NaN or Inf, or an integer dtype
 * declared for a float weight, are refused at load naming the file and the tensor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';
import { bytesOf, expectEngineError, npyBytes, zipBytes } from '../checkpoint/helpers.ts';
import { tempDir } from './helpers.ts';

let root: string;
beforeAll(() => {
  root = tempDir('tc-badw-');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const d = 4;
const dT = 6;
const filled = (n: number, v = 0.5) => new Float32Array(n).fill(v);

/** A one-layer GemmaScope folder; `override` replaces members (descr and data). */
function gemmaScope(
  name: string,
  override: Record<string, { descr: string; data: ArrayBufferView }>,
): string {
  const dir = path.join(root, name);
  const file = path.join(dir, 'layer_0/width_16k/average_l0_50/params.npz');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const arrays: Record<string, { shape: number[]; data: ArrayBufferView }> = {
    W_enc: { shape: [d, dT], data: filled(d * dT) },
    W_dec: { shape: [dT, d], data: filled(dT * d) },
    b_enc: { shape: [dT], data: filled(dT) },
    b_dec: { shape: [d], data: filled(d) },
    threshold: { shape: [dT], data: filled(dT) },
  };
  const entries = Object.entries(arrays).map(([k, a]) => {
    const o = override[k];
    return {
      name: `${k}.npy`,
      method: 0 as const,
      data: npyBytes({ descr: o?.descr ?? '<f4', shape: a.shape, data: bytesOf(o?.data ?? a.data) }),
    };
  });
  fs.writeFileSync(file, zipBytes(entries));
  return file;
}

it('a well-formed set loads', () => {
  const file = gemmaScope('ok', {});
  loadTranscoderSet(path.dirname(path.dirname(path.dirname(path.dirname(file))))).close();
});

for (const [tensor, value] of [
  ['b_enc', Number.NaN],
  ['b_dec', Number.POSITIVE_INFINITY],
  ['threshold', Number.NEGATIVE_INFINITY],
] as const) {
  it(`${tensor} holding ${value} is refused at load, naming file and tensor`, () => {
    const n = tensor === 'b_dec' ? d : dT;
    const data = filled(n);
    data[2] = value;
    const file = gemmaScope(`nan-${tensor}`, { [tensor]: { descr: '<f4', data } });
    const dir = path.join(root, `nan-${tensor}`);
    const t0 = performance.now();
    const err = expectEngineError(() => loadTranscoderSet(dir), 'bounds', file, 'not finite', 'element 2');
    expect(err.tensor).toBe(tensor);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
}

it('an integer dtype declared for b_enc is refused at load, naming tensor and dtype', () => {
  const file = gemmaScope('i32', { b_enc: { descr: '<i4', data: new Int32Array(dT).fill(1) } });
  const err = expectEngineError(
    () => loadTranscoderSet(path.join(root, 'i32')),
    'dtype',
    file,
    'b_enc',
    'I32',
  );
  expect(err.tensor).toBe('b_enc');
});
