/**
 * Resident weights decoded on the decode pool's threads (WeightFeeder.ready) on the demo model:
 * the forward's hooks and logits are bit-identical to the one-thread decode, on the CPU and on a
 * device (a DeviceTensors that copies each upload, so the device path runs here: every resident
 * weight is uploaded once, in the sessions' input order, whole, and its host array dropped).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodePool } from '../../../electron/engine/checkpoint/parallel-decode.ts';
import { ForwardPass } from '../../../electron/engine/model/forward-pass.ts';
import { openModel } from '../../../electron/engine/model/open-model.ts';
import { transcoderHookNames } from '../../../electron/engine/model/transcoder-encoder.ts';
import { WeightFeeder } from '../../../electron/engine/model/weight-feeder.ts';
import type { DeviceTensors } from '../../../electron/engine/runtime/device-tensors.ts';
import { ort } from '../../../electron/engine/runtime/session.ts';
import { loadTranscoderSet } from '../../../electron/engine/transcoders/load.ts';

const DEMO_DIR = path.resolve(import.meta.dirname, '../../../resources/models/gemma2-demo');
const TOKENS = [2, 651, 6037, 576, 2329, 10751, 26865, 603];
const pool = new DecodePool({ threads: 2, idleMs: 100 });
afterAll(() => pool.close());

/** A device that keeps a copy of each upload (host memory), recording what came in. */
class CopyingDevice implements DeviceTensors {
  readonly provider = 'cpu' as const;
  readonly onDevice = true;
  uploadedBytes = 0;
  uploadMs = 0;
  readonly uploads: Array<{ n: number; sum: number }> = [];
  async upload(host: ort.Tensor): Promise<ort.Tensor> {
    // The uploads are awaited one by one: a slow device lets decodes run ahead.
    await new Promise((r) => setTimeout(r, 2));
    const data = Float32Array.from(host.data as Float32Array);
    let sum = 0;
    for (const v of data) sum += v;
    this.uploads.push({ n: data.length, sum });
    this.uploadedBytes += data.byteLength;
    return new ort.Tensor('float32', data, [...host.dims]);
  }
  dispose(): void {}
  async release(): Promise<void> {}
}

async function hooksOf(fp: ForwardPass, tokens: number[], nLayers: number) {
  const hooks = [
    'logits',
    'hook_embed',
    ...Array.from({ length: nLayers }, (_, l) => [
      `blocks.${l}.hook_resid_post`,
      transcoderHookNames(l).acts,
    ]).flat(),
  ];
  const out = await fp.run(tokens, hooks);
  return new Map(hooks.map((h) => [h, Buffer.from((out.get(h) as { data: Float32Array }).data.buffer)]));
}

describe('resident weights decoded in parallel', () => {
  it('give the same forward as one thread, on the CPU and through a device', async () => {
    const model = openModel(DEMO_DIR);
    const set = loadTranscoderSet(path.join(DEMO_DIR, 'transcoders', 'clt'));
    const tokens = TOKENS.map((t) => t % model.config.vocabSize);
    const serialFeeder = new WeightFeeder({ pool: null });
    const parallelFeeder = new WeightFeeder({ pool, parallelMinBytes: 0 });
    const deviceFeeder = new WeightFeeder({ pool, parallelMinBytes: 0 });
    const device = new CopyingDevice();
    const serial = await ForwardPass.create(model, { transcoders: set, feeder: serialFeeder });
    const parallel = await ForwardPass.create(model, { transcoders: set, feeder: parallelFeeder });
    const onDevice = await ForwardPass.create(model, {
      transcoders: set,
      feeder: deviceFeeder,
      device: () => device,
    });
    try {
      expect(serial.compiled.streamed).toBe(false);
      const want = await hooksOf(serial, tokens, model.config.nLayers);
      for (const [name, fp] of [
        ['parallel', parallel],
        ['device', onDevice],
      ] as const) {
        const got = await hooksOf(fp, tokens, model.config.nLayers);
        for (const [h, bytes] of want) expect(got.get(h)?.equals(bytes), `${name} ${h}`).toBe(true);
      }
      // One thread decodes on first use; the pool decoded every resident checkpoint weight.
      expect(serialFeeder.poolDecodedBytes).toBe(0);
      expect(parallelFeeder.poolDecodedBytes).toBeGreaterThan(0);
      expect(parallelFeeder.poolDecodedBytes).toBeLessThanOrEqual(parallelFeeder.residentBytes);
      // Through the device: each resident weight uploaded once and whole, none kept on the host.
      expect(deviceFeeder.poolDecodedBytes).toBeGreaterThan(0);
      expect(device.uploads.length).toBeGreaterThan(0);
      expect(device.uploadedBytes).toBe(deviceFeeder.deviceBytes);
      expect(deviceFeeder.residentBytes).toBe(0);
      expect(device.uploads.every((u) => Number.isFinite(u.sum) && u.n > 0)).toBe(true);
    } finally {
      await Promise.all([serial.close(), parallel.close(), onDevice.close()]);
      set.close();
      model.close();
    }
  });
});
