/**
 * Crash safety: a child process saving traces is killed with SIGKILL — right after a graph's
 * sidecar became durable, inside the transaction before COMMIT, and at random moments of a save
 * loop. Afterwards the database passes `PRAGMA integrity_check`, every trace the child reported
 * as saved is there whole (rows, view, feature index, sidecar with the exact adjacency), a trace
 * whose transaction was cut is not there at all, and no orphan sidecar or pending row is left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { pruneGraph } from '../../electron/engine/pruning/index.ts';
import { GRAPH_DIR } from '../../electron/store/data-dir.ts';
import { Store } from '../../electron/store/store.ts';
import { tempDir } from './helpers.ts';
import { syntheticGraph } from './synthetic.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const tmp = tempDir('cw-crash-');
afterAll(() => tmp.cleanup());

interface Round {
  saved: Array<{ id: number; seed: number }>;
  cut?: { id?: number; seed?: number; file?: string };
}

/**
 * Runs the child until `trigger(line)` says to kill it: true = now, a number = after that many
 * milliseconds (wherever the child is then). Resolves after it died.
 */
function runChild(
  mode: string,
  firstSeed: number,
  trigger: (line: string, round: Round) => boolean | number,
): Promise<Round> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'tests/store/crash-child.ts'), tmp.dir, mode, String(firstSeed)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const round: Round = { saved: [] };
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise<Round>((resolve, reject) => {
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child (${mode}) did not reach its kill point in time\n${stderr}`));
    }, 40_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const [what, a, b] = line.split(' ');
      if (what === 'SAVED') round.saved.push({ id: Number(a), seed: Number(b) });
      if (what === 'IN-TX') round.cut = { id: Number(a), seed: Number(b) };
      if (what === 'SIDECAR') round.cut = { file: a };
      if (killed) return;
      const when = trigger(line, round);
      if (when === false) return;
      killed = true;
      if (when === true) child.kill('SIGKILL');
      else setTimeout(() => child.kill('SIGKILL'), when);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(round);
      else reject(new Error(`child (${mode}) exited by itself (code ${code})\n${stderr}`));
    });
  });
}

describe('crash safety', () => {
  it('SIGKILL while saving leaves a sound library holding each trace whole or not at all', async () => {
    const rounds: Round[] = [];
    rounds.push(await runChild('in-transaction', 100, (line) => line.startsWith('IN-TX')));
    rounds.push(await runChild('after-sidecar', 200, (line) => line.startsWith('SIDECAR')));
    const orphan = path.join(tmp.dir, GRAPH_DIR, rounds[1].cut!.file!);
    expect(fs.existsSync(orphan)).toBe(true); // durable, but never referenced
    // Random moments of a save loop (sidecar write, transaction, between saves).
    for (const first of [300, 400]) {
      const delay = 100 + Math.floor(Math.random() * 300);
      rounds.push(
        await runChild('loop', first, (line, round) =>
          line.startsWith('SAVED') && round.saved.length >= 1 ? delay : false,
        ),
      );
    }

    // What the dead children left: a sidecar of the cut transactions (and maybe the loop's).
    const store = Store.open(tmp.dir); // opening removes orphans
    try {
      expect(fs.existsSync(orphan)).toBe(false);
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(store.check()).toEqual(['ok']); // integrity, foreign keys, every sidecar's size and hash

      const cutSeeds = rounds.flatMap((r) => (r.cut?.seed !== undefined ? [r.cut.seed] : []));
      expect(cutSeeds).toHaveLength(1);
      const traces = store.traces.list({ limit: 1000 }).traces;
      const bySeed = new Map(traces.map((t) => [Number(t.prompt.split(' ')[1]), t]));
      for (const s of cutSeeds) expect(bySeed.has(s)).toBe(false); // not committed: not there at all
      const savedCount = rounds.reduce((n, r) => n + r.saved.length, 0);
      expect(savedCount).toBeGreaterThanOrEqual(2 + 2 + 1 + 1);
      for (const r of rounds) {
        for (const s of r.saved) expect(bySeed.get(s.seed)?.id).toBe(s.id); // reported saved: there
      }
      // Every trace present is whole, including one the loop committed but did not report.
      for (const t of traces) {
        const seed = Number(t.prompt.split(' ')[1]);
        const g = syntheticGraph(seed, { nFeatures: 900, nLayers: 6, nPositions: 10, edgesPerRow: 40 });
        expect(t.status).toBe('done');
        expect(t.tags).toEqual([`seed-${seed}`]);
        const raw = store.graphs.loadRaw(t.id);
        expect(Buffer.from(raw.adjacency.buffer).equals(Buffer.from(g.adjacency.buffer))).toBe(true);
        expect(store.graphs.defaultView(t.id)!.pruned).toEqual(
          pruneGraph(g, { nodeThreshold: 0.8, edgeThreshold: 0.98 }),
        );
        const distinct = new Set(
          Array.from(g.nodes.features.layer, (l, i) => `${l}:${g.nodes.features.index[i]}`),
        );
        expect(
          store.db.prepare('SELECT count(*) FROM trace_features WHERE trace_id = ?').pluck().get(t.id),
        ).toBe(distinct.size);
      }
      // No orphans: every file is a referenced sidecar; no pending rows of dead processes.
      const referenced = new Set(store.db.prepare('SELECT sidecar FROM graphs').pluck().all() as string[]);
      expect(fs.readdirSync(path.join(tmp.dir, GRAPH_DIR)).sort()).toEqual([...referenced].sort());
      expect(store.db.prepare('SELECT count(*) FROM pending_files').pluck().get()).toBe(0);
      expect(store.db.prepare('SELECT count(*) FROM graphs').pluck().get()).toBe(traces.length);
    } finally {
      store.close();
    }
  });
});
