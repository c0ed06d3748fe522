/**
 * Sharded safetensors checkpoints: `model.safetensors.index.json` =
 * `{"metadata": {"total_size": …}, "weight_map": {tensor: shard file}}`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readSmallRegularFile } from '../arch/config.ts';
import { EngineError } from '../errors.ts';
import { openSafetensors } from './safetensors.ts';
import type { TensorStore } from './tensor.ts';
import { UnionTensorStore } from './union.ts';

/**
 * The most an index may hold: one line per tensor, ~100 bytes each; the largest public
 * checkpoints' indexes are a few hundred KiB.
 */
export const MAX_SHARD_INDEX_BYTES = 16 * 2 ** 20;

export interface ShardIndex {
  metadata: Record<string, unknown>;
  /** tensor name → shard file name (relative to the index's folder) */
  weightMap: Map<string, string>;
}

/** Read and validate a sharded index file (the shards themselves are not opened). */
export function readShardIndex(indexPath: string): ShardIndex {
  // a FIFO, device or oversized index is refused before anything is read
  const text = readSmallRegularFile(indexPath, MAX_SHARD_INDEX_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EngineError('header', `index is not valid JSON: ${(e as Error).message}`, { file: indexPath });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new EngineError('header', 'index must be a JSON object', { file: indexPath });
  }
  const obj = json as Record<string, unknown>;
  const wm = obj['weight_map'];
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new EngineError('header', 'index has no weight_map object', {
      file: indexPath,
      field: 'weight_map',
    });
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    const ctx = { file: indexPath, tensor: name, field: 'weight_map' };
    if (typeof shard !== 'string' || shard.length === 0) {
      throw new EngineError('header', 'weight_map values must be shard file names', ctx);
    }
    if (path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
      throw new EngineError('header', `shard file ${shard} must be inside the checkpoint folder`, ctx);
    }
    weightMap.set(name, shard);
  }
  const md = obj['metadata'];
  const metadata =
    typeof md === 'object' && md !== null && !Array.isArray(md) ? (md as Record<string, unknown>) : {};
  return { metadata, weightMap };
}

/**
 * Open a sharded checkpoint from its index file. Every referenced shard must exist and
 * hold every tensor mapped to it (EngineError 'missing' naming the index file and tensor).
 * Only tensors listed in weight_map are exposed.
 */
export function openShardedSafetensors(indexPath: string): UnionTensorStore {
  const index = readShardIndex(indexPath);
  const dir = path.dirname(indexPath);
  const byShard = new Map<string, TensorStore>();
  const mapping = new Map<string, TensorStore>();
  const opened: TensorStore[] = [];
  try {
    for (const [name, shard] of index.weightMap) {
      let store = byShard.get(shard);
      if (!store) {
        const shardPath = path.join(dir, shard);
        if (!fs.existsSync(shardPath)) {
          throw new EngineError('missing', `shard file ${shard} referenced by the index does not exist`, {
            file: indexPath,
            tensor: name,
          });
        }
        store = openSafetensors(shardPath);
        opened.push(store);
        byShard.set(shard, store);
      }
      if (!store.has(name)) {
        throw new EngineError(
          'missing',
          `tensor is mapped to shard ${shard} but that shard does not hold it`,
          {
            file: indexPath,
            tensor: name,
          },
        );
      }
      mapping.set(name, store);
    }
    return new UnionTensorStore(`sharded checkpoint ${indexPath}`, opened, { mapping, file: indexPath });
  } catch (e) {
    for (const s of opened) s.close();
    throw e;
  }
}
