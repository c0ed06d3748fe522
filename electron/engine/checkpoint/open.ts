/**
 * Open the tensors of a Hugging Face checkpoint folder: a sharded index, a single
 * `model.safetensors`, or the union of every `*.safetensors` in the folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../errors.ts';
import { fsError } from './file-reader.ts';
import { openSafetensors } from './safetensors.ts';
import { openShardedSafetensors } from './sharded.ts';
import type { TensorStore } from './tensor.ts';
import { UnionTensorStore } from './union.ts';

export const SHARD_INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/**
 * `dir` may also be a single `.safetensors` file or an index file. Preference order:
 * `model.safetensors.index.json`, `model.safetensors`, the only `*.safetensors.index.json`,
 * then all `*.safetensors` files (duplicate tensor names are an error).
 */
export function openCheckpointTensors(dir: string): TensorStore {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (e) {
    throw fsError(e, 'cannot open checkpoint', { file: dir });
  }
  if (stat.isFile()) {
    if (dir.endsWith('.index.json')) return openShardedSafetensors(dir);
    return openSafetensors(dir);
  }
  const index = path.join(dir, SHARD_INDEX_FILE);
  if (fs.existsSync(index)) return openShardedSafetensors(index);
  const single = path.join(dir, SINGLE_FILE);
  if (fs.existsSync(single)) return openSafetensors(single);
  let files: string[];
  try {
    files = fs.readdirSync(dir).sort();
  } catch (e) {
    throw fsError(e, 'cannot list checkpoint folder', { file: dir });
  }
  const indexes = files.filter((f) => f.endsWith('.safetensors.index.json'));
  if (indexes.length === 1) return openShardedSafetensors(path.join(dir, indexes[0]));
  const shards = files.filter((f) => f.endsWith('.safetensors'));
  if (shards.length === 0) {
    throw new EngineError(
      'missing',
      `no ${SHARD_INDEX_FILE}, ${SINGLE_FILE} or *.safetensors in the folder`,
      {
        file: dir,
      },
    );
  }
  if (shards.length === 1) return openSafetensors(path.join(dir, shards[0]));
  const stores: TensorStore[] = [];
  try {
    for (const f of shards) stores.push(openSafetensors(path.join(dir, f)));
    return new UnionTensorStore(`checkpoint ${dir}`, stores, { file: dir });
  } catch (e) {
    for (const s of stores) s.close();
    throw e;
  }
}
