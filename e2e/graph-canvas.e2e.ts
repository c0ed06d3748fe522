/**
 * The WebGL canvas of a big graph (GraphCanvas over sigma 4), in Chromium on the render bench's
 * harness page (renderer/bench: the workbench's own layout → filter → scene → canvas, no
 * server): hover, click and a threshold change cost O(degree) restyles, never a full sigma
 * refresh (every item re-styled and re-indexed) nor a re-process of every node.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchApi } from '../renderer/bench/bench-api.ts';
import { chromiumAvailable, launchChromium } from './helpers/browser.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const NODES = 2000;
const EDGES = 40_000;

let out = '';
let server: http.Server | null = null;
let browser: Browser | null = null;
let page: Page;
const pageErrors: string[] = [];

/** Counters the page keeps on the canvas's sigma instance (see instrument). */
interface Tally {
  /** Node state writes other than label placement's (see labelWrites). */
  nodeStateWrites: number;
  /** Writes of the `labelled` flag: placement after the view settles, at most MAX_LABELS. */
  labelWrites: number;
  edgeStateWrites: number;
  fullRefreshes: number;
  nodeProcesses: number;
  edgeProcesses: number;
}

/** Wraps the sigma instance's state setters and refresh paths with counters (window.__tally). */
async function instrument(): Promise<void> {
  await page.evaluate(() => {
    type Fn = (...a: unknown[]) => unknown;
    const host = globalThis as unknown as {
      __circuitCanvases: Set<{ instance: Record<string, Fn>; placeLabelsNow: Fn }>;
      __placed: boolean;
    };
    const canvas = [...host.__circuitCanvases][0];
    const s = canvas.instance;
    const tally = {
      nodeStateWrites: 0,
      labelWrites: 0,
      edgeStateWrites: 0,
      fullRefreshes: 0,
      nodeProcesses: 0,
      edgeProcesses: 0,
    };
    (globalThis as unknown as { __tally: typeof tally }).__tally = tally;
    // Zeroes the counters and starts a new window (see __placed).
    (globalThis as unknown as { __resetTally: () => void }).__resetTally = () => {
      for (const k of Object.keys(tally)) tally[k as keyof typeof tally] = 0;
      host.__placed = false;
    };
    const wrap = (name: string, count: (args: unknown[]) => void) => {
      const orig = s[name].bind(s);
      s[name] = (...args: unknown[]) => {
        count(args);
        return orig(...args);
      };
    };
    wrap('setNodeState', () => tally.nodeStateWrites++);
    wrap('setNodesState', (a) => {
      const n = [...(a[0] as Iterable<string>)].length;
      if ('labelled' in (a[1] as object)) tally.labelWrites += n;
      else tally.nodeStateWrites += n;
    });
    wrap('setEdgeState', () => tally.edgeStateWrites++);
    wrap('setEdgesState', (a) => {
      tally.edgeStateWrites += [...(a[0] as Iterable<string>)].length;
    });
    wrap('refresh', (a) => {
      if (!(a[0] as { partialGraph?: unknown } | undefined)?.partialGraph) tally.fullRefreshes++;
    });
    // Label placement (120 ms after a hover or click) writes `labelled` states, and sigma
    // re-processes the nodes for it: counted as label writes, not as the hover's own node work.
    const place = canvas.placeLabelsNow.bind(canvas);
    canvas.placeLabelsNow = () => {
      host.__placed = true;
      return place();
    };
    wrap('processNodes', () => {
      if (!host.__placed) tally.nodeProcesses++;
    });
    wrap('processEdges', () => tally.edgeProcesses++);
  });
}

/**
 * Resets the counters, runs `act` in the page, waits three frames, returns the counters (node
 * processes only until a label placement starts: see instrument).
 */
async function measure(act: string): Promise<Tally> {
  return page.evaluate(async (src) => {
    const g = globalThis as unknown as { __tally: Record<string, number>; __resetTally: () => void };
    g.__resetTally();
    new Function(src)();
    for (let i = 0; i < 3; i++) await new Promise((r) => requestAnimationFrame(r));
    return { ...g.__tally } as unknown as Tally;
  }, act);
}

function canvasCall(call: string): string {
  return `[...globalThis.__circuitCanvases][0].${call};`;
}

async function counts(): Promise<{ nodes: number; edges: number; big: boolean }> {
  return page.evaluate(() => {
    const host = globalThis as unknown as {
      __circuitCanvases: Set<{ counts(): { nodes: number; edges: number; big: boolean } }>;
    };
    return [...host.__circuitCanvases][0].counts();
  });
}

/** A feature of the middle layers (links both ways, below the focus cap), other than `except`. */
async function middleFeature(except = ''): Promise<string> {
  return page.evaluate((first) => {
    const host = globalThis as unknown as {
      __circuitCanvases: Set<{ instance: { getGraph(): { nodes(): string[] } } }>;
    };
    const nodes = [...host.__circuitCanvases][0].instance.getGraph().nodes();
    return nodes.find((n) => n !== first && /^1[0-5]_\d+_\d+_\d+$/.test(n)) as string;
  }, except);
}

/** The graph's nodes, and how many of them sigma draws (has display data for). */
async function drawnNodes(): Promise<{ nodes: number; drawn: number }> {
  return page.evaluate(() => {
    const host = globalThis as unknown as {
      __circuitCanvases: Set<{
        instance: { getGraph(): { nodes(): string[] }; getNodeDisplayData(n: string): unknown };
      }>;
    };
    const s = [...host.__circuitCanvases][0].instance;
    const nodes = s.getGraph().nodes();
    return { nodes: nodes.length, drawn: nodes.filter((n) => s.getNodeDisplayData(n) !== undefined).length };
  });
}

describe.skipIf(!chromiumAvailable())('graph canvas: O(degree) updates in a big graph', () => {
  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-canvas-e2e-'));
    await build({
      configFile: path.join(ROOT, 'vite.config.ts'),
      logLevel: 'warn',
      build: {
        outDir: out,
        emptyOutDir: true,
        rollupOptions: { input: path.join(ROOT, 'renderer/bench/index.html') },
      },
    });
    const srv = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x').pathname;
      const file = path.join(out, url === '/' ? 'bench/index.html' : url);
      if (!file.startsWith(out) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': file.endsWith('.js') ? 'text/javascript' : 'text/html' });
      fs.createReadStream(file).pipe(res);
    });
    server = srv;
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as { port: number }).port;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'bench' in globalThis);
    await page.evaluate(([n, e]) => (globalThis as unknown as { bench: BenchApi }).bench.load(n, e), [
      NODES,
      EDGES,
    ] as const);
    await instrument();
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
    if (out) fs.rmSync(out, { recursive: true, force: true });
  });

  it('the page compiled the canvas shaders at start (prewarmShaders) and left nothing behind', async () => {
    const left = await page.evaluate(() => ({
      ms: (globalThis as unknown as { bench: BenchApi }).bench.prewarmMs(),
      // The harness page's own elements only: no hidden container or canvas is left.
      canvasesOutsideGraph: [...document.querySelectorAll('canvas')].filter(
        (c) => !(document.getElementById('graph') as HTMLElement).contains(c),
      ).length,
      bodyChildren: [...document.body.children].map((c) => c.id || c.tagName.toLowerCase()),
    }));
    expect(left.ms).toBeGreaterThan(0);
    expect(left.canvasesOutsideGraph).toBe(0);
    expect(left.bodyChildren).toEqual(['graph']);
    expect(pageErrors).toEqual([]);
  });

  it('hover and leave write state for the neighbourhood only, and re-process no node', async () => {
    const rest = await counts();
    expect(rest.big).toBe(true);
    expect(rest.nodes).toBe(NODES);
    // A feature in the middle layers: links both ways, well below the focus cap.
    const id = await middleFeature();
    const d = await page.evaluate((n) => (globalThis as unknown as { bench: BenchApi }).bench.degree(n), id);
    expect(d).toBeGreaterThan(5);

    const hover = await measure(canvasCall(`setHover(${JSON.stringify(id)})`));
    // The node, its neighbours (at most one per link) and the hovered flag.
    expect(hover.nodeStateWrites).toBeGreaterThan(1);
    expect(hover.nodeStateWrites).toBeLessThanOrEqual(d + 2);
    expect(hover.edgeStateWrites).toBeGreaterThan(0);
    expect(hover.edgeStateWrites).toBeLessThanOrEqual(d);
    expect(hover.labelWrites).toBeLessThanOrEqual(300);
    expect(hover.fullRefreshes).toBe(0);
    expect(hover.nodeProcesses).toBe(0);
    // Its links beyond the rest budget are drawn while it is hovered…
    const hovered = await counts();
    expect(hovered.edges).toBeGreaterThan(rest.edges);
    expect(hovered.edges - rest.edges).toBeLessThanOrEqual(d);

    const leave = await measure(canvasCall('setHover(null)'));
    expect(leave.nodeStateWrites).toBeLessThanOrEqual(d + 2);
    expect(leave.edgeStateWrites).toBeLessThanOrEqual(d);
    expect(leave.fullRefreshes).toBe(0);
    expect(leave.nodeProcesses).toBe(0);
    // …and dropped again after, without rebuilding the edge buffer (edge-tail.ts).
    expect(leave.edgeProcesses).toBe(0);
    expect((await counts()).edges).toBe(rest.edges);

    const click = await measure(canvasCall(`setSelected(${JSON.stringify(id)})`));
    expect(click.nodeStateWrites).toBe(1);
    expect(click.fullRefreshes).toBe(0);
    expect(click.nodeProcesses).toBe(0);
    expect((await counts()).edges).toBe(hovered.edges);
    const unclick = await measure(canvasCall('setSelected(null)'));
    expect(unclick.fullRefreshes).toBe(0);
    expect((await counts()).edges).toBe(rest.edges);
    expect(pageErrors).toEqual([]);
  });

  it('tighter thresholds drop nodes and edges in one pass, without a full refresh', async () => {
    await measure(canvasCall('setHover(null)') + canvasCall('setSelected(null)'));
    const before = await counts();
    await page.evaluate(() => {
      const g = globalThis as unknown as { __resetTally: () => void; __sigma: unknown };
      g.__resetTally();
      g.__sigma = [
        ...(globalThis as unknown as { __circuitCanvases: Set<{ instance: unknown }> }).__circuitCanvases,
      ][0].instance;
    });
    const r = await page.evaluate(() =>
      (globalThis as unknown as { bench: BenchApi }).bench.refilter(0.5, 0.9),
    );
    const tally = await page.evaluate(() => ({ ...(globalThis as unknown as { __tally: Tally }).__tally }));
    expect(r.sceneNodes).toBeLessThan(before.nodes);
    expect(r.counts.nodes).toBe(r.sceneNodes);
    expect(tally.fullRefreshes).toBe(0);
    // The same sigma instance (a diff, not a rebuild: the counters are on it).
    const same = await page.evaluate(() => {
      const g = globalThis as unknown as { __sigma: unknown; __circuitCanvases: Set<{ instance: unknown }> };
      return [...g.__circuitCanvases][0].instance === g.__sigma;
    });
    expect(same).toBe(true);
    // Every node sigma draws is in the graph, and a dropped one is gone from sigma too.
    const consistent = await drawnNodes();
    expect(consistent.drawn).toBe(consistent.nodes);
    // Loosening again restores the full view: every node back in sigma, no full refresh.
    const back = await page.evaluate(() => {
      (globalThis as unknown as { __resetTally: () => void }).__resetTally();
      return (globalThis as unknown as { bench: BenchApi }).bench.refilter(0.8, 0.98);
    });
    const added = await page.evaluate(() => ({ ...(globalThis as unknown as { __tally: Tally }).__tally }));
    expect(back.counts.nodes).toBe(NODES);
    expect(back.counts.edges).toBe(before.edges);
    expect(added.fullRefreshes).toBe(0);
    expect(added.nodeProcesses).toBeLessThanOrEqual(2);
    const { drawn } = await drawnNodes();
    expect(drawn).toBe(NODES);
    expect(pageErrors).toEqual([]);
  });

  it('a big rebuild draws a first frame with part of the nodes, then ends with the whole scene', async () => {
    const loaded = await page.evaluate(() =>
      (globalThis as unknown as { bench: BenchApi }).bench.load(6000, 60_000),
    );
    expect(loaded.sceneNodes).toBeGreaterThan(2000);
    expect(loaded.firstFrameNodes).toBeLessThan(loaded.sceneNodes);
    const done = await counts();
    expect(done.nodes).toBe(loaded.sceneNodes);
    expect(done.edges).toBe(loaded.drawnEdges);
    // Every node in sigma's buffers, and the same thresholds again change nothing (no node or
    // edge was left out or added twice by the batches).
    const { drawn } = await drawnNodes();
    expect(drawn).toBe(loaded.sceneNodes);
    const again = await page.evaluate(() =>
      (globalThis as unknown as { bench: BenchApi }).bench.refilter(0.8, 0.98),
    );
    expect(again.counts.nodes).toBe(done.nodes);
    expect(again.counts.edges).toBe(done.edges);
    expect(pageErrors).toEqual([]);
  });

  it("a hovered node's links go after the built edges, and draw what a full rebuild draws", async () => {
    // The canvas of the previous test's graph (6000 / 60k): counters on its sigma instance.
    await instrument();
    const rest = await counts();
    expect(rest.big).toBe(true);
    // Picking is on the CPU: sigma's programs have no picking twin (pick-programs.ts).
    const twins = await page.evaluate(() => {
      type P = { pickProgram: unknown } | null;
      const host = globalThis as unknown as {
        __circuitCanvases: Set<{ instance: { nodeProgram: P; edgeProgram: P } }>;
      };
      const s = [...host.__circuitCanvases][0].instance;
      return [s.nodeProgram, s.edgeProgram].map((p) => (p ? p.pickProgram !== null : 'missing'));
    });
    expect(twins).toEqual([false, false]);
    const id = await middleFeature();
    /**
     * Sigma's edge buffer as drawn: every graph edge at one position inside the drawn ranges,
     * no position drawn twice or left over; and the frame's pixels, drawn now and again after a
     * full rebuild of the edge buffer (which must not change them).
     */
    const inspect = () =>
      page.evaluate(() => {
        type Range = { offset: number; count: number };
        const host = globalThis as unknown as {
          __circuitCanvases: Set<{
            instance: {
              getGraph(): { edges(): string[] };
              getWebGLContext(): WebGL2RenderingContext;
              render(): void;
              processEdges(): void;
              depthRanges: { edges: Record<string, Range[]> };
              edgeProgramIndex: Record<string, number>;
              edgeProgram: {
                floats: Float32Array;
                ATTRIBUTES: Array<{ name: string; size: number; normalized?: boolean }>;
              };
            };
          }>;
        };
        const s = [...host.__circuitCanvases][0].instance;
        const drawn = new Set<number>();
        let overlaps = 0;
        for (const list of Object.values(s.depthRanges.edges))
          for (const r of list)
            for (let p = r.offset; p < r.offset + r.count; p++) {
              if (drawn.has(p)) overlaps++;
              drawn.add(p);
            }
        const edges = s.getGraph().edges();
        const misplaced = edges.filter((e) => !drawn.has(s.edgeProgramIndex[e])).length;
        // Each edge's vertex data, but its picking id (tail edges have none: CPU picking).
        const attrs = s.edgeProgram.ATTRIBUTES;
        const stride = attrs.reduce((n, a) => n + (a.normalized ? 1 : a.size), 0);
        let idSlot = -1;
        attrs.reduce((n, a) => {
          if (a.name === 'a_id') idSlot = n;
          return n + (a.normalized ? 1 : a.size);
        }, 0);
        const vertexData = () =>
          new Map(
            edges.map((e) => {
              const at = s.edgeProgramIndex[e] * stride;
              const v = Array.from(s.edgeProgram.floats.subarray(at, at + stride));
              if (idSlot >= 0) v[idSlot] = 0;
              return [e, v.join(',')];
            }),
          );
        const gl = s.getWebGLContext();
        const pixels = () => {
          s.render();
          const px = new Uint8Array(gl.drawingBufferWidth * gl.drawingBufferHeight * 4);
          gl.readPixels(0, 0, gl.drawingBufferWidth, gl.drawingBufferHeight, gl.RGBA, gl.UNSIGNED_BYTE, px);
          return px;
        };
        const now = pixels();
        const data = vertexData();
        s.processEdges();
        const rebuilt = pixels();
        const dataAfter = vertexData();
        const changedData = edges.filter((e) => data.get(e) !== dataAfter.get(e)).length;
        let differing = 0;
        let inked = 0;
        for (let i = 0; i < now.length; i += 4) {
          if (now[i + 3] > 0) inked++;
          if (now[i] !== rebuilt[i] || now[i + 1] !== rebuilt[i + 1] || now[i + 2] !== rebuilt[i + 2])
            differing++;
        }
        return {
          edges: edges.length,
          drawnPositions: drawn.size,
          overlaps,
          misplaced,
          changedData,
          differing,
          inked,
        };
      });

    const hover = await measure(canvasCall(`setHover(${JSON.stringify(id)})`));
    expect(hover.edgeProcesses).toBe(0);
    const hovered = await counts();
    expect(hovered.edges).toBeGreaterThan(rest.edges);
    const h = await inspect();
    expect(h.edges).toBe(hovered.edges);
    expect(h.drawnPositions).toBe(h.edges);
    expect(h.overlaps).toBe(0);
    expect(h.misplaced).toBe(0);
    expect(h.changedData).toBe(0);
    expect(h.inked).toBeGreaterThan(1000);
    // Where translucent edges cross, the order they are drawn in may differ (the tail is drawn
    // after the built edges of its depth): a few pixels, not an edge's worth.
    expect(h.differing).toBeLessThanOrEqual(20);

    // Hover elsewhere and leave: the tail is rewritten, still no rebuild.
    const other = await middleFeature(id);
    // (inspect's rebuild made the hovered links part of the built edges: start over.)
    await measure(canvasCall('setHover(null)'));
    await measure(canvasCall(`setHover(${JSON.stringify(id)})`));
    const moved = await measure(canvasCall(`setHover(${JSON.stringify(other)})`));
    expect(moved.edgeProcesses).toBe(0);
    const m = await inspect();
    expect(m.drawnPositions).toBe(m.edges);
    expect(m.misplaced).toBe(0);
    expect(m.changedData).toBe(0);
    expect(m.differing).toBeLessThanOrEqual(20);
    await measure(canvasCall('setHover(null)'));
    await measure(canvasCall(`setHover(${JSON.stringify(other)})`));
    const leave = await measure(canvasCall('setHover(null)'));
    expect(leave.edgeProcesses).toBe(0);
    expect((await counts()).edges).toBe(rest.edges);
    const l = await inspect();
    expect(l.drawnPositions).toBe(rest.edges);
    expect(l.changedData).toBe(0);
    expect(l.differing).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
