/**
 * A second process opening the library (which runs the orphan clean-up) while this one saves:
 * clean-up must never delete a graph file a concurrent save commits. This process duplicates a
 * trace in a loop for a few seconds while children open and close the library as fast as they
 * can; afterwards every `done` trace's graph file is there and matches its recorded hash.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { GRAPH_DIR } from '../../electron/store/data-dir.ts';
import { Store } from '../../electron/store/store.ts';
import { circuitRunner, REPO_ROOT } from '../fixtures/circuit-cli.ts';
import { saveSynthetic, tempDir } from './helpers.ts';
import { syntheticGraph } from './synthetic.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = tempDir('cw-concurrent-open-');
afterAll(() => tmp.cleanup());

const LOOP_MS = 4000;

/** Starts an opener child; resolves once it opened the library once, with its exit promise. */
function startOpener(ms: number): Promise<{ done: Promise<number> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'tests/store/opener-child.ts'), tmp.dir, String(ms)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let opens = 0;
  const done = new Promise<number>((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0 ? resolve(opens) : reject(new Error(`opener exited with ${code}\n${stderr}`)),
    );
  });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'READY') resolve({ done });
      if (line.startsWith('DONE ')) opens = Number(line.slice(5));
    });
    done.catch(reject);
  });
}

describe('a second process opening the library during saves', () => {
  it('never deletes a graph file that a concurrent save commits', async () => {
    const store = Store.open(tmp.dir);
    try {
      const first = saveSynthetic(
        store,
        syntheticGraph(1, { nFeatures: 40, nLayers: 2, nPositions: 4, edgesPerRow: 8 }),
      );
      const openers = await Promise.all([startOpener(LOOP_MS), startOpener(LOOP_MS)]);
      const end = Date.now() + LOOP_MS;
      let saves = 0;
      while (Date.now() < end) {
        store.duplicateTrace(first.id);
        saves++;
        // Let the event loop read the children's output now and then.
        if (saves % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      const opens = await Promise.all(openers.map((o) => o.done));
      expect(saves).toBeGreaterThan(20);
      expect(opens[0] + opens[1]).toBeGreaterThan(20);

      const traces = store.traces.list({ limit: 100_000 }).traces;
      expect(traces.length).toBe(saves + 1);
      const broken = traces
        .filter((t) => t.status === 'done')
        .flatMap((t) => store.graphs.verify(t.id).map((p) => `trace ${t.id}: ${p}`));
      expect(broken).toEqual([]);
      // Nothing left over either: every file is a referenced graph file, no pending rows.
      const referenced = store.db.prepare('SELECT sidecar FROM graphs').pluck().all() as string[];
      expect(fs.readdirSync(path.join(tmp.dir, GRAPH_DIR)).sort()).toEqual(referenced.sort());
      expect(store.db.prepare('SELECT count(*) FROM pending_files').pluck().get()).toBe(0);
    } finally {
      store.close();
    }
  }, 60_000);

  it('as the issue reproduced it: `circuit trace --save` runs opening the library and exiting', async () => {
    const data = path.join(tmp.dir, 'cli');
    const store = Store.open(data);
    try {
      const first = saveSynthetic(
        store,
        syntheticGraph(2, { nFeatures: 40, nLayers: 2, nPositions: 4, edgesPerRow: 8 }),
      );
      // A bounded shell loop of real CLI runs: each opens the library (clean-up included),
      // then fails on the missing model. At ~1 s a run this end-to-end check makes only a few
      // opens, too few to hit the race reliably; the test above (hundreds of opens) is the one
      // that failed before the fix.
      const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO_ROOT, 'bin/circuit.mjs'))}`;
      const loop = spawn(
        'bash',
        [
          '-c',
          `n=0; end=$((SECONDS+4)); while [ $SECONDS -lt $end ]; do ${cli} trace --save --data "$1" ` +
            `--model /nonexistent --transcoders /nonexistent --prompt p >/dev/null 2>&1; n=$((n+1)); done; echo $n`,
          'loop',
          data,
        ],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      loop.stdout.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<void>((resolve) => loop.on('exit', () => resolve()));
      let running = true;
      void exited.then(() => {
        running = false;
      });
      let saves = 0;
      while (running) {
        store.duplicateTrace(first.id);
        saves++;
        if (saves % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await exited;
      expect(Number(out.trim())).toBeGreaterThan(0);
      const traces = store.traces.list({ limit: 100_000 }).traces;
      expect(traces.length).toBe(saves + 1);
      for (const t of traces) expect(store.graphs.verify(t.id), `trace ${t.id}`).toEqual([]);
      // And through the CLI, on the newest traces.
      const circuit = circuitRunner(path.join(tmp.dir, 'cache'));
      for (const t of traces.slice(0, 3)) {
        const r = circuit('library', 'show', String(t.id), '--data', data, '--verify', '--json');
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).verify).toEqual({ ok: true, problems: [] });
      }
    } finally {
      store.close();
    }
  }, 90_000);
});
