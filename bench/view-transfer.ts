/**
 * View transfer benchmark: what `graphs.view` costs between the library and the renderer's
 * first scene, stage by stage, for graphs shaped like circuit-tracer's (26 layers, 20 tokens,
 * 10k nodes) with ~100k and ~1M edges, over a real WebSocket on 127.0.0.1.
 *
 *   npx tsx bench/view-transfer.ts [--repeat 3] [--sizes 100000,1000000] [--form json|packed] [--diff]
 *
 * One form per process gives the fairer renderer figure: with both, the renderer's functions
 * see number arrays and typed arrays and the JIT keeps them generic.
 *
 * The stored view holds every node and nonzero edge (the size the renderer must take in).
 * Per form (`json`: edges as JSON number arrays, the form before packing; `packed`: base64 typed
 * arrays, what the renderer asks for), medians of --repeat runs after one warm-up run:
 *   server.build   GraphRepository.getView + buildGraphView (labels, ids, edges by view index)
 *   server.handler the service's graphs.view in process (the above plus the trace, annotations,
 *                  labels and dashboard digests it reads)
 *   server.json    JSON.stringify of the result message (what the WebSocket server sends)
 *   wire.bytes     that text's length
 *   client.parse   JSON.parse of that text (what the WebSocket client does)
 *   client.decode  packed edges → typed arrays (packed only)
 *   call           client.call('graphs.view') end to end: all of the above plus the socket
 *   renderer       layeredLayout + filterView + sceneFromView on the decoded view (what the
 *                  store and pane do before sigma draws; bench/render.ts times the draw)
 *
 * `--diff` also saves a second graph of the same shape and times `graphs.diff` with the merged
 * graph (compare's diff mode), its edges as JSON objects or packed (`edges: 'packed'`, what the
 * renderer asks for): the handler in process, the result's JSON size, and the call end to end
 * with the edges decoded into typed arrays.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { GraphView } from '../electron/api/contract.ts';
import { decodeViewEdges, mergedEdgeArrays } from '../electron/api/packed-edges.ts';
import { WorkbenchService } from '../electron/api/service.ts';
import { connectApi } from '../electron/api/transports/node-client.ts';
import { startApiServer } from '../electron/api/transports/websocket-server.ts';
import { buildGraphView } from '../electron/api/view.ts';
import { nodeLayout } from '../electron/engine/attribution/graph-types.ts';
import { InProcessCompute } from '../electron/jobs/in-process-compute.ts';
import { emptyAnnotations } from '../electron/store/annotations.ts';
import { Store } from '../electron/store/store.ts';
import { filterView } from '../renderer/src/graph/filter.ts';
import { layeredLayout } from '../renderer/src/graph/layout.ts';
import { sceneFromView } from '../renderer/src/graph/scene.ts';
import { syntheticGraph, wholeGraphView } from '../tests/store/synthetic.ts';

const { values: flags } = parseArgs({
  options: {
    repeat: { type: 'string' },
    sizes: { type: 'string' },
    form: { type: 'string' },
    diff: { type: 'boolean' },
  },
});
const repeat = Number(flags.repeat ?? 3);
const edgeTargets = (flags.sizes ?? '100000,1000000').split(',').map(Number);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();

/** What the pane does with a fresh view before sigma: layout, filter, scene. */
function rendererStages(view: GraphView): number {
  const t = now();
  const layout = layeredLayout([view]);
  const filter = filterView(view, view.nodeThreshold, view.edgeThreshold);
  sceneFromView(view, layout, filter, 'bench');
  return now() - t;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-view-bench-'));
const store = Store.open(path.join(tmp, 'data'));
const service = new WorkbenchService({
  store,
  compute: new InProcessCompute({ cacheRoot: path.join(tmp, 'cache') }),
}).start();
const server = await startApiServer({ backend: service, host: '127.0.0.1', port: 0 });
const client = await connectApi(server.wsUrl, { timeoutMs: 600_000 });
// A registered model (folders never read here): graphs.diff compares traces of one model.
const benchModel = store.models.upsert({
  name: 'bench',
  checkpointDir: '/bench/model',
  transcoderDir: '/bench/transcoders',
  transcoderSet: {
    contentHash: 'bench',
    dir: '/bench/transcoders',
    kind: 'plt',
    nLayers: 26,
    dModel: 8,
    dTranscoder: 16,
  },
  contentHash: 'bench',
  family: 'gemma2',
  nLayers: 26,
  validation: { valid: true, problems: [], model: null, transcoders: null },
});

try {
  for (const edges of edgeTargets) {
    const L = 26;
    const T = 20;
    const K = 10;
    const F = 10_000 - L * T - T - K;
    // Lower layers read from fewer sources; ~1.25× the row budget lands near the target.
    const save = (seed: number) => {
      const raw = syntheticGraph(seed, {
        nLayers: L,
        nPositions: T,
        nFeatures: F,
        nLogits: K,
        edgesPerRow: Math.round((edges / F) * 1.25),
      });
      const whole = wholeGraphView(raw);
      const trace = store.saveTrace({
        trace: {
          projectId: store.projects.ensureDefault().id,
          modelId: benchModel.id,
          transcoderSetId: benchModel.transcoderSetId,
          source: 'trace',
          prompt: `bench ${edges} ${seed}`,
          tokenIds: Array.from(raw.nodes.promptTokenIds),
          settings: {
            maxNLogits: K,
            desiredLogitProb: 0.95,
            maxFeatureNodes: null,
            batchSize: 256,
            nodeThreshold: 1,
            edgeThreshold: 1,
            provider: 'cpu',
            targets: null,
          },
        },
        raw,
        views: [{ pruned: whole }],
      });
      return { raw, whole, trace };
    };
    const { raw, whole, trace } = save(7);
    const E = whole.edges.target.length;
    console.log(`\n${nodeLayout(raw.nodes).total} nodes / ${E} edges`);
    const forms = (['json', 'packed'] as const).filter((f) => (flags.form ?? f) === f);
    const fig = { json: {} as Record<string, number[]>, packed: {} as Record<string, number[]> };
    // Round 0 warms the JIT for both forms and is not counted; forms alternate within a round.
    for (let r = 0; r <= repeat; r++) {
      for (const form of forms) {
        const add = (k: string, v: number) => {
          if (r === 0) return;
          fig[form][k] ??= [];
          fig[form][k].push(v);
        };
        const params =
          form === 'packed' ? { traceId: trace.id, edges: 'packed' as const } : { traceId: trace.id };
        let t = now();
        const stored = store.graphs.getView(trace.id, 1, 1, '');
        if (!stored) throw new Error('the stored view is missing');
        const built = buildGraphView({
          traceId: trace.id,
          nodes: store.graphs.nodes(trace.id),
          pruned: stored.pruned,
          featureLabels: new Map(),
          annotations: emptyAnnotations(trace.id),
          pinned: [],
          cached: true,
          packEdges: form === 'packed',
        });
        add('server.build', now() - t);
        t = now();
        await service.call('graphs.view', params);
        add('server.handler', now() - t);
        t = now();
        const text = JSON.stringify({ type: 'result', id: 1, result: built });
        add('server.json', now() - t);
        add('wire.MB', text.length / 2 ** 20);
        t = now();
        const parsed = JSON.parse(text).result;
        add('client.parse', now() - t);
        if (form === 'packed') {
          t = now();
          decodeViewEdges(parsed);
          add('client.decode', now() - t);
        }
        t = now();
        const got = await client.call('graphs.view', params);
        const view = form === 'packed' ? decodeViewEdges(got) : got;
        add('call', now() - t);
        if (view.edges.source.length !== E)
          throw new Error(`expected ${E} edges, got ${view.edges.source.length}`);
        add('renderer', rendererStages(view));
      }
    }
    for (const form of forms) {
      const cells = Object.entries(fig[form]).map(([k, v]) =>
        k === 'wire.MB' ? `${k} ${median(v).toFixed(1)}` : `${k} ${median(v).toFixed(0)} ms`,
      );
      console.log(`  ${form.padEnd(6)} ${cells.join(' · ')}`);
    }
    if (flags.diff) {
      const other = save(8).trace;
      const diffFig = { objects: {} as Record<string, number[]>, packed: {} as Record<string, number[]> };
      let mergedEdges = 0;
      for (let r = 0; r <= repeat; r++) {
        for (const form of ['objects', 'packed'] as const) {
          const add = (k: string, v: number) => {
            if (r === 0) return;
            diffFig[form][k] ??= [];
            diffFig[form][k].push(v);
          };
          const params = { a: { traceId: trace.id }, b: { traceId: other.id }, merged: true, edges: form };
          let t = now();
          const result = await service.call('graphs.diff', params);
          add('server.handler', now() - t);
          add('wire.MB', JSON.stringify({ type: 'result', id: 1, result }).length / 2 ** 20);
          t = now();
          const got = await client.call('graphs.diff', params);
          const arrays = mergedEdgeArrays(got.merged!);
          add('call+decode', now() - t);
          mergedEdges = arrays.source.length;
        }
      }
      console.log(`  graphs.diff, merged graph of ${mergedEdges} edges:`);
      for (const form of ['objects', 'packed'] as const) {
        const cells = Object.entries(diffFig[form]).map(([k, v]) =>
          k === 'wire.MB' ? `${k} ${median(v).toFixed(1)}` : `${k} ${median(v).toFixed(0)} ms`,
        );
        console.log(`  ${form.padEnd(7)} ${cells.join(' · ')}`);
      }
    }
  }
} finally {
  await client.close();
  await server.close();
  await service.close();
  store.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
