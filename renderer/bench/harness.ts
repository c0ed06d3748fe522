/**
 * Render benchmark harness (bench/render.ts drives it in headless Chromium): generates a
 * graph of N nodes / E edges shaped like an attribution graph, draws it with the workbench's
 * own pipeline (layout → filter → scene → GraphCanvas) and measures frames.
 */
import type { GraphView, ViewNode } from '../src/api/types.ts';
import { GraphCanvas, prewarmShaders } from '../src/graph/canvas.ts';
import { filterView } from '../src/graph/filter.ts';
import { layeredLayout } from '../src/graph/layout.ts';
import { crowdScale, sceneFromView } from '../src/graph/scene.ts';
import type { BenchApi } from './bench-api.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticView(nNodes: number, nEdges: number, seed = 1): GraphView {
  const r = rng(seed);
  const nLayers = 26;
  const T = 24;
  const nLogits = 10;
  const nErrors = Math.min(nLayers * T, Math.floor(nNodes * 0.1));
  const nFeatures = nNodes - T - nLogits - nErrors;
  const nodes: ViewNode[] = [];
  for (let p = 0; p < T; p++)
    nodes.push({
      id: `E_${100 + p}_${p}`,
      kind: 'token',
      layer: -1,
      position: p,
      index: 100 + p,
      activation: null,
      influence: r(),
      probability: null,
      token: ` tok${p}`,
      label: '',
    });
  const shares = Array.from({ length: nFeatures + nErrors }, () => r()).sort((a, b) => a - b);
  for (let i = 0; i < nFeatures; i++) {
    const layer = Math.floor(r() * nLayers);
    const pos = Math.floor(r() ** 0.5 * T);
    const idx = Math.floor(r() * 16384);
    nodes.push({
      id: `${layer}_${idx}_${pos}_${i}`,
      kind: 'feature',
      layer,
      position: pos,
      index: idx,
      activation: r() * 10,
      influence: shares[i],
      probability: null,
      token: null,
      label: i % 7 === 0 ? `feature ${i}` : '',
    });
  }
  for (let i = 0; i < nErrors; i++) {
    const layer = i % nLayers;
    const pos = Math.floor(i / nLayers) % T;
    nodes.push({
      id: `${layer}_-1_${pos}_${i}`,
      kind: 'error',
      layer,
      position: pos,
      index: -1,
      activation: null,
      influence: shares[nFeatures + i],
      probability: null,
      token: null,
      label: '',
    });
  }
  let rest = 1;
  for (let k = 0; k < nLogits; k++) {
    const p = k === nLogits - 1 ? rest : rest * 0.5;
    rest -= p;
    nodes.push({
      id: `${nLayers + 1}_${500 + k}_${T - 1}`,
      kind: 'logit',
      layer: nLayers + 1,
      position: T - 1,
      index: 500 + k,
      activation: null,
      influence: null,
      probability: p,
      token: ` out${k}`,
      label: '',
    });
  }
  const rank = (n: ViewNode) => (n.kind === 'token' ? -1 : n.kind === 'logit' ? nLayers + 1 : n.layer);
  const byRank = new Map<number, number[]>();
  nodes.forEach((n, i) => {
    const k = rank(n);
    const l = byRank.get(k) ?? [];
    l.push(i);
    byRank.set(k, l);
  });
  const ranks = [...byRank.keys()].sort((a, b) => a - b);
  const source: number[] = [];
  const target: number[] = [];
  const weight: number[] = [];
  const seen = new Set<number>();
  let guard = 0;
  while (source.length < nEdges && guard++ < nEdges * 4) {
    const ti = 1 + Math.floor(r() * (ranks.length - 1));
    const si = Math.floor(r() * ti);
    const tl = byRank.get(ranks[ti]) as number[];
    const sl = byRank.get(ranks[si]) as number[];
    const t = tl[Math.floor(r() * tl.length)];
    const s = sl[Math.floor(r() * sl.length)];
    const key = s * nodes.length + t;
    if (seen.has(key)) continue;
    seen.add(key);
    source.push(s);
    target.push(t);
    weight.push((r() < 0.7 ? 1 : -1) * r() ** 3 * 5);
  }
  return {
    traceId: 0,
    nodeThreshold: 0.8,
    edgeThreshold: 0.98,
    pinned: [],
    nLayers,
    nPositions: T,
    promptTokens: Array.from({ length: T }, (_, p) => ` tok${p}`),
    unprunedNodes: nNodes,
    nodes,
    edges: { source, target, weight },
    replacementScore: null,
    completenessScore: null,
    cached: true,
  };
}

/** The workbench's pipeline for a view at given thresholds: layout → filter → scene. */
function sceneAt(v: GraphView, nodeThreshold: number, edgeThreshold: number) {
  const el = document.getElementById('graph') as HTMLElement;
  const layout = layeredLayout([v], {
    aspect: (el.clientWidth - 80) / Math.max(1, el.clientHeight - 80),
    widthPx: el.clientWidth - 80,
  });
  const filter = filterView(v, nodeThreshold, edgeThreshold);
  return sceneFromView(v, layout, filter, 'bench', {
    tokenAxis: true,
    nodeScale: crowdScale(filter.nodeCount, el.clientWidth, el.clientHeight),
  });
}

let canvas: GraphCanvas | null = null;
let view: GraphView | null = null;
/** Input → drawn latencies: pointer move to the hovered neighbourhood's frame, click to the selection's frame. */
const hoverLatency: number[] = [];
const clickLatency: number[] = [];
let lastMove = 0;
let lastUp = 0;
let pendingHover = false;
let pendingClick = false;

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  return {
    median: s[Math.floor(s.length / 2)] ?? Number.NaN,
    p95: s[Math.min(s.length - 1, Math.floor(s.length * 0.95))] ?? Number.NaN,
  };
}

/** Every rendered frame: main-thread render time, and the time until the GPU finished it. */
const frameLog: Array<{ js: number; total: number }> = [];

function recordFrames(c: GraphCanvas): void {
  const s = c.instance;
  const gl = s.getWebGLContext();
  let t0 = 0;
  // First in line: the canvas's own beforeRender work (edge buffers) is part of the frame.
  s.prependListener('beforeRender', () => {
    t0 = performance.now();
  });
  s.on('afterRender', () => {
    const js = performance.now() - t0;
    gl.finish();
    const now = performance.now();
    frameLog.push({ js, total: now - t0 });
    if (pendingHover) hoverLatency.push(now - lastMove);
    if (pendingClick) clickLatency.push(now - lastUp);
    pendingHover = false;
    pendingClick = false;
  });
}

async function load(nNodes: number, nEdges: number) {
  canvas?.kill();
  view = null;
  const el = document.getElementById('graph') as HTMLElement;
  el.replaceChildren();
  view = syntheticView(nNodes, nEdges);
  hoverLatency.length = 0;
  clickLatency.length = 0;
  el.addEventListener(
    'mousemove',
    () => {
      lastMove = performance.now();
    },
    { capture: true },
  );
  el.addEventListener(
    'mouseup',
    () => {
      lastUp = performance.now();
    },
    { capture: true },
  );
  const t0 = performance.now();
  const c = new GraphCanvas(el, {
    onHover: (id) => {
      if (id !== null) pendingHover = true;
      c.setHover(id);
    },
    onClick: (id) => {
      pendingClick = true;
      c.setSelected(id);
    },
  });
  canvas = c;
  const scene = sceneAt(view, 0.8, 0.98);
  const tPrep = performance.now();
  const framesBefore = c.framesDrawn();
  c.setScene(scene);
  // Ready: the first frame with the scene in it is drawn (sigma draws it synchronously when
  // it is created; otherwise it comes on a later animation frame), GPU work finished.
  if (c.framesDrawn() === framesBefore)
    await new Promise<void>((resolve) => {
      const done = () => {
        c.instance.off('afterRender', done);
        resolve();
      };
      c.instance.on('afterRender', done);
    });
  c.instance.getWebGLContext().finish();
  const tFirst = performance.now();
  const firstFrameNodes = c.counts().nodes;
  // Complete: every batch added and the labels placed, and that frame drawn.
  await c.whenComplete();
  c.instance.getWebGLContext().finish();
  const tComplete = performance.now();
  recordFrames(c);
  return {
    nodes: view.nodes.length,
    edges: view.edges.source.length,
    drawnEdges: c.counts().edges,
    sceneNodes: scene.nodes.length,
    firstFrameNodes,
    prepMs: tPrep - t0,
    firstFrameMs: tFirst - t0,
    completeMs: tComplete - t0,
  };
}

function latencies() {
  return {
    hover: stats(hoverLatency),
    hoverN: hoverLatency.length,
    click: stats(clickLatency),
    clickN: clickLatency.length,
  };
}

function frameCount(): number {
  return frameLog.length;
}

/** Stats of the frames logged since index `from`. */
function framesSince(from: number) {
  const xs = frameLog.slice(from);
  return { frames: xs.length, total: stats(xs.map((f) => f.total)), js: stats(xs.map((f) => f.js)) };
}

/**
 * Viewport positions of k nodes spread over the graph (hover and click targets): nodes whose
 * own pick at that point is themselves (not hidden under a neighbour), when there are enough.
 */
function nodeTargets(k: number): Array<{ x: number; y: number; id: string }> {
  const c = canvas as GraphCanvas;
  const v = view as GraphView;
  const s = c.instance;
  const out: Array<{ x: number; y: number; id: string }> = [];
  const rect = s.getContainer().getBoundingClientRect();
  for (let i = 0; out.length < k && i < k * 20; i++) {
    const n = v.nodes[Math.floor(((((i * 7919) % (k * 20)) + 0.5) / (k * 20)) * v.nodes.length)];
    const d = s.getNodeDisplayData(n.id);
    if (!d) continue;
    const p = s.framedGraphToViewport(d);
    if (p.x < 5 || p.y < 5 || p.x > rect.width - 5 || p.y > rect.height - 5) continue;
    if (typeof c.pick === 'function' && c.pick(p.x, p.y) !== n.id) continue;
    out.push({ x: p.x + rect.left, y: p.y + rect.top, id: n.id });
  }
  return out;
}

function heapMb(): number | null {
  const g = globalThis as { gc?: () => void };
  g.gc?.();
  const m = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  return m ? m.usedJSHeapSize / 2 ** 20 : null;
}

/** Thresholds moved: the same pipeline, and the canvas diffs its graph (ms until drawn). */
async function refilter(nodeThreshold: number, edgeThreshold: number) {
  const c = canvas as GraphCanvas;
  const t0 = performance.now();
  const scene = sceneAt(view as GraphView, nodeThreshold, edgeThreshold);
  c.setScene(scene);
  await new Promise<void>((resolve) => {
    const done = () => {
      c.instance.off('afterRender', done);
      resolve();
    };
    c.instance.on('afterRender', done);
  });
  return { ms: performance.now() - t0, sceneNodes: scene.nodes.length, counts: c.counts() };
}

/** A node's links in the loaded view (in + out). */
function degree(id: string): number {
  const v = view as GraphView;
  const i = v.nodes.findIndex((n) => n.id === id);
  let d = 0;
  for (let e = 0; e < v.edges.source.length; e++) if (v.edges.source[e] === i || v.edges.target[e] === i) d++;
  return d;
}

/** As the app does when it starts (main.ts): the canvas's shaders compiled before any graph. */
const prewarmMs = prewarmShaders();

const bench: BenchApi = {
  load,
  heapMb,
  frameCount,
  framesSince,
  nodeTargets,
  latencies,
  refilter,
  degree,
  prewarmMs: () => prewarmMs,
};
Object.assign(window, { bench });
