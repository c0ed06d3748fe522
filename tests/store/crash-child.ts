/**
 * Child process of crash.test.ts: saves synthetic traces into a library until it is killed.
 * argv: <data dir> <mode> <first seed>
 *   loop            save forever, printing "SAVED <traceId> <seed>" after each commit
 *   after-sidecar   save two traces, then stop (block) right after the third one's sidecar is durable
 *   in-transaction  save two traces, then block inside the third one's transaction, before COMMIT
 * Blocking lines: "SIDECAR <file>" / "IN-TX <traceId> <seed>". Output is written synchronously,
 * so a printed line means the step before it has happened.
 */
import fs from 'node:fs';
import { Store } from '../../electron/store/store.ts';
import { saveSynthetic } from './helpers.ts';
import { syntheticGraph } from './synthetic.ts';

const [dataDir, mode, firstSeed] = process.argv.slice(2);
const say = (line: string) => fs.writeSync(1, `${line}\n`);
const block = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);

let seed = Number(firstSeed);
let count = 0;
const store = Store.open(dataDir, {
  hooks: {
    afterSidecar: (file) => {
      if (mode === 'after-sidecar' && count === 2) {
        say(`SIDECAR ${file}`);
        block();
      }
    },
    beforeCommit: (traceId) => {
      if (mode === 'in-transaction' && count === 2) {
        say(`IN-TX ${traceId} ${seed}`);
        block();
      }
    },
  },
});
say('READY');
for (;;) {
  const t = saveSynthetic(
    store,
    syntheticGraph(seed, { nFeatures: 900, nLayers: 6, nPositions: 10, edgesPerRow: 40 }),
    {
      prompt: `seed ${seed}`,
      tags: [`seed-${seed}`],
    },
  );
  say(`SAVED ${t.id} ${seed}`);
  seed++;
  count++;
}
