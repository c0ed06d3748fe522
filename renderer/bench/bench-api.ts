/**
 * What the render bench's harness page (harness.ts) exposes as `window.bench`: one contract for
 * the page, the bench that drives it (bench/render.ts) and the e2e checks that use it
 * (e2e/graph-canvas.e2e.ts). Types only, with no DOM in them, so Node code can import it.
 */

export interface Stats {
  median: number;
  p95: number;
}

/** Frames logged since some index: count, and render → GPU-finished / main-thread-only times. */
export interface MeasuredFrames {
  frames: number;
  total: Stats;
  js: Stats;
}

export interface Latencies {
  hover: Stats;
  hoverN: number;
  click: Stats;
  clickN: number;
}

export interface BenchLoad {
  nodes: number;
  edges: number;
  drawnEdges: number;
  sceneNodes: number;
  firstFrameNodes: number;
  prepMs: number;
  firstFrameMs: number;
  completeMs: number;
}

export interface BenchApi {
  /** Draws a generated graph of n nodes / e edges with a fresh canvas; times it. */
  load(n: number, e: number): Promise<BenchLoad>;
  /** JS heap after a GC (MB), when the page can tell. */
  heapMb(): number | null;
  /** How long compiling the canvas's shaders took when the page opened. */
  prewarmMs(): number;
  frameCount(): number;
  framesSince(from: number): MeasuredFrames;
  /** Viewport positions of k nodes to hover and click. */
  nodeTargets(k: number): Array<{ x: number; y: number; id: string }>;
  latencies(): Latencies;
  /** The loaded graph at other thresholds (the canvas diffs its graph). */
  refilter(
    nodeThreshold: number,
    edgeThreshold: number,
  ): Promise<{ ms: number; sceneNodes: number; counts: { nodes: number; edges: number } }>;
  /** A node's links in the loaded view (in + out). */
  degree(id: string): number;
}
