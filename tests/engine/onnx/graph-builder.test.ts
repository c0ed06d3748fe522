import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../../electron/engine/onnx/graph-builder.ts';

describe('GraphBuilder', () => {
  it('emits a model ONNX Runtime runs from memory, with a weight fed as an input and an inline one', async () => {
    const g = new GraphBuilder('test');
    const x = g.input('x', 'float32', ['T', 3]);
    // The engine's weights are graph inputs (model/weight-feeder.ts); small constants are inline.
    const w = g.input('w:weight', 'float32', [2, 3]);
    const b = g.constFloat([0.5, -0.5]);
    const y = g.linear(x, w, b);
    const s = g.softmax(y, -1);
    const m = g.reduceMean(g.mul(y, y), [-1]);
    g.output(y, 'y');
    g.output(s, 'softmax');
    g.output(m, 'ms');

    const session = await ort.InferenceSession.create(g.serialize());
    expect([...session.inputNames].sort()).toEqual(['w:weight', 'x']);
    const feeds = {
      x: new ort.Tensor('float32', new Float32Array([1, 0, 0, 0, 1, 2]), [2, 3]),
      'w:weight': new ort.Tensor('float32', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
    };
    const out = await session.run(feeds);
    expect(Array.from(out.y.data as Float32Array)).toEqual([1.5, 3.5, 8.5, 16.5]);
    const sm = out.softmax.data as Float32Array;
    expect(sm[0] + sm[1]).toBeCloseTo(1, 6);
    expect((out.ms.data as Float32Array)[0]).toBeCloseTo((1.5 ** 2 + 3.5 ** 2) / 2, 5);
    expect(out.y.dims).toEqual([2, 2]);
    await session.release();
  });
});
