import path from 'node:path';
import { LogitHead } from '../../electron/engine/model/logit-head.ts';
import { openModel } from '../../electron/engine/model/open-model.ts';
const dir = '/tmp/gc/synthetic/gemma2-2b-7d28bd6ade9a';
const model = openModel(path.join(dir, 'model'));
const names = model.weightNames;
const t = () => performance.now();
for (const resident of [0, Number.POSITIVE_INFINITY]) {
  const head = await LogitHead.create(model.tensors, names.lmHead ?? names.embed, 30, { residentBytes: resident });
  const x = new Float32Array(model.config.hiddenSize).fill(0.01);
  for (let i = 0; i < 3; i++) {
    const t0 = t();
    await head.logitsPre(x, 1);
    console.log(resident ? 'resident' : 'streamed', (t() - t0).toFixed(0), 'ms');
  }
  await head.close();
}
