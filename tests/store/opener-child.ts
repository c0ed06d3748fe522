/**
 * Child process of concurrent-open.test.ts: opens the library read-write (which runs the orphan
 * clean-up) and closes it, again and again, for `<ms>` milliseconds, like a stream of
 * `circuit trace --save` / `dashboards --data` runs next to a server that is saving.
 * argv: <data dir> <ms>. Prints "READY" after the first open, "DONE <opens>" at the end.
 */
import fs from 'node:fs';
import { Store } from '../../electron/store/store.ts';

const [dataDir, ms] = process.argv.slice(2);
const say = (line: string) => fs.writeSync(1, `${line}\n`);

Store.open(dataDir).close();
say('READY');
const end = Date.now() + Number(ms);
let opens = 1;
while (Date.now() < end) {
  Store.open(dataDir).close();
  opens++;
}
say(`DONE ${opens}`);
