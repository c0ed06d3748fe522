import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ExternalWeights } from '../../../electron/engine/onnx/external-weights.ts';
import { GraphBuilder } from '../../../electron/engine/onnx/graph-builder.ts';

describe('GraphBuilder', () => {
  it('emits a model ONNX Runtime runs, with external and linked weights', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gb-'));
    // A source file whose bytes are referenced in place through a hard link.
    const src = path.join(dir, 'source.bin');
    const srcData = new Float32Array([9, 9, 1, 2, 3, 4, 5, 6]);
    fs.writeFileSync(src, new Uint8Array(srcData.buffer));
    const modelDir = path.join(dir, 'model');
    fs.mkdirSync(modelDir);
    const weights = new ExternalWeights(modelDir);
    const g = new GraphBuilder('test');
    const x = g.input('x', 'float32', ['T', 3]);
    const w = g.initializer('w', 'float32', [2, 3], weights.reference(src, 8, 24)!);
    const b = g.initializer('b', 'float32', [2], weights.addFloat32(new Float32Array([0.5, -0.5])));
    const y = g.linear(x, w, b);
    const s = g.softmax(y, -1);
    const m = g.reduceMean(g.mul(y, y), [-1]);
    g.output(y, 'y');
    g.output(s, 'softmax');
    g.output(m, 'ms');
    weights.close();
    fs.writeFileSync(path.join(modelDir, 'model.onnx'), g.serialize());

    const session = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'));
    const feeds = { x: new ort.Tensor('float32', new Float32Array([1, 0, 0, 0, 1, 2]), [2, 3]) };
    const out = await session.run(feeds);
    expect(Array.from(out.y.data as Float32Array)).toEqual([1.5, 3.5, 8.5, 16.5]);
    const sm = out.softmax.data as Float32Array;
    expect(sm[0] + sm[1]).toBeCloseTo(1, 6);
    expect((out.ms.data as Float32Array)[0]).toBeCloseTo((1.5 ** 2 + 3.5 ** 2) / 2, 5);
    expect(out.y.dims).toEqual([2, 2]);
    await session.release();
  });
});
