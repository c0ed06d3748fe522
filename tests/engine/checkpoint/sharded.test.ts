import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpointTensors } from '../../../electron/engine/checkpoint/open.ts';
import { openSafetensors } from '../../../electron/engine/checkpoint/safetensors.ts';
import { writeSafetensors } from '../../../electron/engine/checkpoint/safetensors-writer.ts';
import { openShardedSafetensors } from '../../../electron/engine/checkpoint/sharded.ts';
import { UnionTensorStore } from '../../../electron/engine/checkpoint/union.ts';
import { expectEngineError, makeTmpDir, removeDir } from './helpers.ts';

let root: string;
beforeAll(() => {
  root = makeTmpDir();
});
afterAll(() => removeDir(root));

function folder(name: string): string {
  const d = path.join(root, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

const v = (n: number, base: number) => Float32Array.from({ length: n }, (_, i) => base + i);

/** a 2-shard checkpoint; returns its folder */
function writeSharded(name: string, weightMap?: Record<string, string>): string {
  const d = folder(name);
  writeSafetensors(path.join(d, 'model-00001-of-00002.safetensors'), [
    { name: 'embed', dtype: 'F32', shape: [4, 2], data: v(8, 0) },
    { name: 'layer0', dtype: 'BF16', shape: [2, 2], data: v(4, 10) },
  ]);
  writeSafetensors(path.join(d, 'model-00002-of-00002.safetensors'), [
    { name: 'layer1', dtype: 'F16', shape: [2], data: v(2, 20) },
    { name: 'extra', dtype: 'F32', shape: [1], data: v(1, 30) },
  ]);
  const wm = weightMap ?? {
    embed: 'model-00001-of-00002.safetensors',
    layer0: 'model-00001-of-00002.safetensors',
    layer1: 'model-00002-of-00002.safetensors',
  };
  fs.writeFileSync(
    path.join(d, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 52 }, weight_map: wm }),
  );
  return d;
}

describe('sharded checkpoints', () => {
  it('opens via the index and reads across shards', () => {
    const d = writeSharded('ok');
    const st = openCheckpointTensors(d);
    expect(st.names().sort()).toEqual(['embed', 'layer0', 'layer1']);
    expect(st.has('extra')).toBe(false);
    expect(Array.from(st.readFloat32('layer0'))).toEqual([10, 11, 12, 13]);
    expect(Array.from(st.readFloat32('layer1'))).toEqual([20, 21]);
    expect(Array.from(st.readRowsFloat32('embed', [3, 1]))).toEqual([6, 7, 2, 3]);
    const info = st.info('layer1');
    expect(info.sourceFile).toBe(path.join(d, 'model-00002-of-00002.safetensors'));
    expect(info.location.kind).toBe('file');
    expect(Array.from(st.readRaw('embed').subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expectEngineError(() => st.info('nope'), 'missing', 'model.safetensors.index.json', 'nope');
    st.close();
  });

  it('missing shard file: names the index and the tensor', () => {
    const d = writeSharded('missing-shard', {
      embed: 'model-00001-of-00002.safetensors',
      layer9: 'model-00003-of-00003.safetensors',
    });
    expectEngineError(
      () => openCheckpointTensors(d),
      'missing',
      path.join(d, 'model.safetensors.index.json'),
      'tensor layer9',
      'model-00003-of-00003.safetensors',
    );
  });

  it('tensor mapped to a shard that does not hold it', () => {
    const d = writeSharded('missing-tensor', {
      embed: 'model-00001-of-00002.safetensors',
      layer1: 'model-00001-of-00002.safetensors',
    });
    expectEngineError(
      () => openCheckpointTensors(d),
      'missing',
      'model.safetensors.index.json',
      'tensor layer1',
    );
  });

  it('malformed index', () => {
    const d = folder('bad-index');
    const idx = path.join(d, 'model.safetensors.index.json');
    fs.writeFileSync(idx, '{"weight_map": ');
    expectEngineError(() => openCheckpointTensors(d), 'header', idx);
    fs.writeFileSync(idx, '{"metadata": {}}');
    expectEngineError(() => openCheckpointTensors(d), 'header', idx, 'weight_map');
    fs.writeFileSync(idx, '{"weight_map": {"a": 3}}');
    expectEngineError(() => openCheckpointTensors(d), 'header', idx, 'tensor a');
    fs.writeFileSync(idx, '{"weight_map": {"a": "../x.safetensors"}}');
    expectEngineError(() => openCheckpointTensors(d), 'header', idx, 'tensor a');
  });

  it('a corrupt shard is reported with the shard file', () => {
    const d = writeSharded('corrupt');
    const shard = path.join(d, 'model-00002-of-00002.safetensors');
    fs.truncateSync(shard, fs.statSync(shard).size - 1);
    expectEngineError(() => openCheckpointTensors(d), 'truncated', shard);
  });

  it('openShardedSafetensors takes the index path directly', () => {
    const d = writeSharded('direct');
    const st = openShardedSafetensors(path.join(d, 'model.safetensors.index.json'));
    expect(st.stores).toHaveLength(2);
    expect(st.storeOf('layer1').description).toContain('model-00002-of-00002');
    st.close();
  });
});

describe('single and multi-file folders', () => {
  it('prefers model.safetensors', () => {
    const d = folder('single');
    writeSafetensors(path.join(d, 'model.safetensors'), [
      { name: 'w', dtype: 'F32', shape: [2], data: v(2, 5) },
    ]);
    writeSafetensors(path.join(d, 'other.safetensors'), [
      { name: 'w', dtype: 'F32', shape: [1], data: v(1, 0) },
    ]);
    const st = openCheckpointTensors(d);
    expect(Array.from(st.readFloat32('w'))).toEqual([5, 6]);
    st.close();
    const f = openCheckpointTensors(path.join(d, 'model.safetensors'));
    expect(f.names()).toEqual(['w']);
    f.close();
  });

  it('unions several *.safetensors and rejects duplicates', () => {
    const d = folder('multi');
    writeSafetensors(path.join(d, 'a.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: v(1, 1) }]);
    writeSafetensors(path.join(d, 'b.safetensors'), [{ name: 'y', dtype: 'F32', shape: [1], data: v(1, 2) }]);
    const st = openCheckpointTensors(d);
    expect(st.names().sort()).toEqual(['x', 'y']);
    expect(st).toBeInstanceOf(UnionTensorStore);
    expect(Array.from(st.readFloat32('y'))).toEqual([2]);
    st.close();
    writeSafetensors(path.join(d, 'c.safetensors'), [{ name: 'x', dtype: 'F32', shape: [1], data: v(1, 3) }]);
    expectEngineError(() => openCheckpointTensors(d), 'header', 'tensor x', 'c.safetensors', 'a.safetensors');
  });

  it('UnionTensorStore works on any stores', () => {
    const d = folder('union');
    writeSafetensors(path.join(d, 'p.safetensors'), [{ name: 'p', dtype: 'F32', shape: [1], data: v(1, 7) }]);
    writeSafetensors(path.join(d, 'q.safetensors'), [{ name: 'q', dtype: 'F32', shape: [1], data: v(1, 8) }]);
    const u = new UnionTensorStore('test union', [
      openSafetensors(path.join(d, 'p.safetensors')),
      openSafetensors(path.join(d, 'q.safetensors')),
    ]);
    expect(Array.from(u.readRowsFloat32('q', [0]))).toEqual([8]);
    expectEngineError(() => u.readRaw('r'), 'missing', 'tensor r');
    u.close();
  });

  it('empty or missing folders', () => {
    const d = folder('empty');
    expectEngineError(() => openCheckpointTensors(d), 'missing', d);
    const nope = path.join(root, 'nope');
    expectEngineError(() => openCheckpointTensors(nope), 'missing', nope);
  });
});
