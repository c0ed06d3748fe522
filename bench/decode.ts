/**
 * Weight decode benchmark: every tensor of a synthetic Gemma-2 checkpoint (bf16, gemma-2-2b's
 * shapes) and its transcoders decoded to float32 into fresh arrays, as a model's resident
 * weights are before a GPU upload — on one thread (readFloat32), then on the decode pool
 * (parallel-decode.ts). Prints wall time, GB/s of float32 out and the ratio, measured in one run.
 *
 *   npx tsx bench/decode.ts [--layers N (default 4)] [--threads N] [--cache-dir DIR]
 *
 * Arrays are dropped tensor by tensor (the figure is decode speed, not memory).
 */
import path from 'node:path';
import { DTYPE_SIZE } from '../electron/engine/checkpoint/dtype.ts';
import { openCheckpointTensors } from '../electron/engine/checkpoint/open.ts';
import {
  DecodePool,
  decodeThreads,
  inOrderAhead,
  poolDecodable,
} from '../electron/engine/checkpoint/parallel-decode.ts';
import type { TensorInfo, TensorStore } from '../electron/engine/checkpoint/tensor.ts';
import { defaultBenchCacheRoot, ensureSyntheticGemma2, GEMMA2_2B, withLayers } from './synthetic-gemma2.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const layers = Number(opt('--layers') ?? 4);
const threads = Number(opt('--threads') ?? decodeThreads());
const root = opt('--cache-dir') ? path.resolve(opt('--cache-dir') as string) : defaultBenchCacheRoot();
const log = (m: string) => process.stderr.write(`${m}\n`);

const spec = withLayers(GEMMA2_2B, layers);
const ck = ensureSyntheticGemma2(spec, root, log, ['model', 'plt']);
const stores: TensorStore[] = [openCheckpointTensors(ck.modelDir)];
for (let l = 0; l < layers; l++)
  stores.push(openCheckpointTensors(path.join(ck.transcoderDir, `layer_${l}.safetensors`)));
const tensors: Array<{ store: TensorStore; info: TensorInfo }> = [];
for (const store of stores)
  for (const name of store.names()) {
    const info = store.info(name);
    if (poolDecodable(info)) tensors.push({ store, info });
  }
/** Float32 bytes a tensor decodes to. */
const f32Bytes = (t: { info: TensorInfo }) => (t.info.byteLength / DTYPE_SIZE[t.info.dtype]) * 4;
const bytes = tensors.reduce((n, t) => n + f32Bytes(t), 0);
log(`${tensors.length} tensors, ${(bytes / 1e9).toFixed(2)} GB of float32, ${threads} threads`);

const t0 = performance.now();
for (const { store, info } of tensors) store.readFloat32(info.name);
const serialMs = performance.now() - t0;

const pool = new DecodePool({ threads });
const t1 = performance.now();
// As WeightFeeder.ready does: decodes started ahead within ~1 GiB, taken in order.
for await (const _ of inOrderAhead(tensors, f32Bytes, (t) => pool.decode(t.info), 1024 ** 3));
const poolMs = performance.now() - t1;
await pool.close();
for (const s of stores) s.close();

const gbps = (ms: number) => (bytes / 1e9 / (ms / 1000)).toFixed(2);
console.log(
  `\nweight decode · gemma-2-2b shapes, ${layers} layers + transcoders, bf16 → float32 · ${(bytes / 1e9).toFixed(2)} GB out`,
);
console.log('| decode | threads | wall s | GB/s |');
console.log('|---|---|---|---|');
console.log(`| readFloat32, one thread | 1 | ${(serialMs / 1000).toFixed(2)} | ${gbps(serialMs)} |`);
console.log(`| decode pool | ${threads} | ${(poolMs / 1000).toFixed(2)} | ${gbps(poolMs)} |`);
console.log(`\none thread ÷ pool: ${(serialMs / poolMs).toFixed(2)}×`);
