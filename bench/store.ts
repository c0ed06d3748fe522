/**
 * Store benchmark: time to save a traced graph into the library and to load its pruned view
 * back, for a graph of ~10k nodes and ~100k edges (and a denser one, as unpruned adjacencies of
 * real traces are), on a real SQLite file in a temporary folder.
 *
 *   npx tsx bench/store.ts [--repeat 5] [--dense] [--json]
 *
 * The stored view of the first case holds every node and every nonzero edge of the graph (the
 * size the UI must handle: ~10k nodes, ~100k edges); re-pruning then uses the defaults.
 *
 * Figures (median of --repeat runs, each into a fresh library):
 *   csr         dense adjacency → CSR (part of save)
 *   save        Store.saveTrace: dense → CSR, sidecar write + fsync + rename, one transaction
 *               (trace, graph row, feature index, the pruned view)
 *   view.load   GraphRepository.getView: the stored pruned view as typed arrays
 *   view.api    the same plus building the API's GraphView (ids, labels) and its JSON text
 *   raw.load    the unpruned graph back (sidecar → dense), what re-pruning starts from
 *   reprune     pruneGraph at new thresholds on the loaded graph (+ storing the new view)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildGraphView } from '../electron/api/view.ts';
import { nodeLayout, type RawAttributionGraph } from '../electron/engine/attribution/graph-types.ts';
import { pruneGraph } from '../electron/engine/pruning/index.ts';
import { emptyAnnotations } from '../electron/store/annotations.ts';
import { denseToCsr } from '../electron/store/graph-file.ts';
import { Store } from '../electron/store/store.ts';
import { syntheticGraph, wholeGraphView } from '../tests/store/synthetic.ts';

const { values: flags } = parseArgs({
  options: { repeat: { type: 'string' }, dense: { type: 'boolean' }, json: { type: 'boolean' } },
});
const repeat = Number(flags.repeat ?? 5);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = <T>(fn: () => T): [T, number] => {
  const t = performance.now();
  const r = fn();
  return [r, performance.now() - t];
};

interface Case {
  name: string;
  graph: RawAttributionGraph;
  /** Thresholds of the stored (default) view ('all': every node and nonzero edge), and of the re-prune. */
  view: [number, number] | 'all';
  reprune: [number, number];
}

function nnzOf(g: RawAttributionGraph): number {
  let n = 0;
  for (let i = 0; i < g.adjacency.length; i++) if (g.adjacency[i] !== 0) n++;
  return n;
}

function runCase(c: Case) {
  const N = nodeLayout(c.graph.nodes).total;
  const pruned =
    c.view === 'all'
      ? wholeGraphView(c.graph)
      : pruneGraph(c.graph, { nodeThreshold: c.view[0], edgeThreshold: c.view[1] });
  const nt = pruned.nodeThreshold;
  const et = pruned.edgeThreshold;
  const figures: Record<string, number[]> = {
    csr: [],
    save: [],
    'view.load': [],
    'view.api': [],
    'raw.load': [],
    reprune: [],
  };
  let sidecarBytes = 0;
  let dbBytes = 0;
  let jsonBytes = 0;
  let reprunedView = { nodes: 0, edges: 0 };
  for (let r = 0; r < repeat; r++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bench-store-'));
    const store = Store.open(dir);
    try {
      figures.csr.push(time(() => denseToCsr(c.graph.adjacency, N))[1]);
      const [t, save] = time(() =>
        store.saveTrace({
          trace: {
            projectId: store.projects.ensureDefault().id,
            modelId: null,
            transcoderSetId: null,
            source: 'trace',
            prompt: c.name,
            tokenIds: Array.from(c.graph.nodes.promptTokenIds),
            settings: {
              maxNLogits: 10,
              desiredLogitProb: 0.95,
              maxFeatureNodes: null,
              batchSize: 256,
              nodeThreshold: nt,
              edgeThreshold: et,
              provider: 'cpu',
            },
          },
          raw: c.graph,
          views: [{ pruned }],
        }),
      );
      figures.save.push(save);
      sidecarBytes = t.graph!.sidecarBytes;
      store.close();
      const reopened = Store.open(dir);
      try {
        const [stored, load] = time(() => reopened.graphs.getView(t.id, nt, et)!);
        figures['view.load'].push(load);
        const [json, api] = time(() => {
          const view = reopened.graphs.getView(t.id, nt, et)!;
          return JSON.stringify(
            buildGraphView({
              traceId: t.id,
              nodes: reopened.graphs.nodes(t.id),
              pruned: view.pruned,
              featureLabels: reopened.features.labels(1),
              annotations: emptyAnnotations(t.id),
              pinned: [],
              cached: true,
            }),
          );
        });
        figures['view.api'].push(api);
        jsonBytes = json.length;
        if (stored.pruned.keptNodes.length !== pruned.keptNodes.length) throw new Error('view differs');
        const [raw, rawLoad] = time(() => reopened.graphs.loadRaw(t.id));
        figures['raw.load'].push(rawLoad);
        const [re, reprune] = time(() => {
          const p = pruneGraph(raw, { nodeThreshold: c.reprune[0], edgeThreshold: c.reprune[1] });
          reopened.graphs.putView(t.id, p);
          return p;
        });
        figures.reprune.push(reprune);
        reprunedView = { nodes: re.keptNodes.length, edges: re.edges.weight.length };
      } finally {
        reopened.close();
      }
      dbBytes = ['library.sqlite', 'library.sqlite-wal']
        .map((f) => path.join(dir, f))
        .filter((f) => fs.existsSync(f))
        .reduce((n, f) => n + fs.statSync(f).size, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    name: c.name,
    nodes: N,
    nnz: nnzOf(c.graph),
    view: {
      thresholds: c.view === 'all' ? 'every node and edge' : `node ${c.view[0]} / edge ${c.view[1]}`,
      nodes: pruned.keptNodes.length,
      edges: pruned.edges.weight.length,
    },
    reprune: { thresholds: c.reprune, ...reprunedView },
    sidecar_mib: sidecarBytes / 2 ** 20,
    db_mib: dbBytes / 2 ** 20,
    view_json_mib: jsonBytes / 2 ** 20,
    ms: Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)])),
  };
}

const cases: Case[] = [
  {
    name: '10k nodes / ~100k edges; the stored view is the whole graph',
    graph: syntheticGraph(1, { nLayers: 16, nPositions: 24, nFeatures: 9600, nLogits: 10, edgesPerRow: 10 }),
    view: 'all',
    reprune: [0.8, 0.98],
  },
];
if (flags.dense) {
  cases.push({
    name: '6k nodes, dense unpruned adjacency (~4M edges)',
    graph: syntheticGraph(2, { nLayers: 12, nPositions: 20, nFeatures: 5700, nLogits: 10, edgesPerRow: 700 }),
    view: [0.8, 0.98],
    reprune: [0.6, 0.9],
  });
}

const results = cases.map(runCase);
if (flags.json) {
  console.log(JSON.stringify(results));
} else {
  console.log(
    `store benchmark — median of ${repeat} runs, ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
  );
  for (const r of results) {
    console.log(`\n${r.name}`);
    console.log(
      `  unpruned       ${r.nodes} nodes, ${r.nnz} nonzero edges; sidecar ${r.sidecar_mib.toFixed(2)} MiB, db ${r.db_mib.toFixed(2)} MiB`,
    );
    console.log(
      `  stored view    ${r.view.thresholds}: ${r.view.nodes} nodes, ${r.view.edges} edges (API JSON ${r.view_json_mib.toFixed(2)} MiB)`,
    );
    console.log(
      `  re-pruned      node ${r.reprune.thresholds[0]} / edge ${r.reprune.thresholds[1]}: ${r.reprune.nodes} nodes, ${r.reprune.edges} edges`,
    );
    for (const [k, v] of Object.entries(r.ms))
      console.log(`  ${k.padEnd(14)} ${v.toFixed(1).padStart(8)} ms`);
  }
}
