/**
 * Rendering benchmark: the workbench's graph pipeline (layout → filter → scene → sigma 4)
 * in headless Chromium (SwiftShader WebGL2, i.e. rendering on the CPU: absolute numbers are
 * far slower than on a GPU; compare sizes and changes, not machines).
 *
 *   npm run bench:render            (builds the harness, then runs 1k/10k, 10k/100k, 10k/1M)
 *   npx tsx bench/render.ts 2000:20000 …   (other sizes, nodes:edges)
 *
 * Graphs are shaped like circuit-tracer's: 26 layers, 24 tokens, edges from lower to higher
 * layers. The page compiles the canvas's shaders when it starts, as the app does (main.ts), and
 * the time that took is printed. Per size: time to first frame ("ready": data → layout → scene → first drawn frame,
 * gl.finish()ed), time until complete (every batch the canvas adds after the first frame is in
 * and the labels are placed, drawn), edges actually drawn, JS heap after load (after a GC), median / p95 frame
 * time while panning, and input latencies: pointer move → the hovered node's neighbourhood
 * drawn, click → the selected node drawn (median / p95 over BENCH_FRAMES targets).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import type { BenchApi, Latencies, MeasuredFrames } from '../renderer/bench/bench-api.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const sizes = (
  process.argv.slice(2).length ? process.argv.slice(2) : ['1000:10000', '10000:100000', '10000:1000000']
).map((s) => {
  const [n, e] = s.split(':').map(Number);
  return { n, e };
});

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-render-bench-'));
await build({
  configFile: path.join(ROOT, 'vite.config.ts'),
  logLevel: 'warn',
  build: {
    outDir: out,
    emptyOutDir: true,
    // Readable function names in a profile (BENCH_PROFILE).
    minify: process.env.BENCH_PROFILE ? false : undefined,
    rollupOptions: { input: path.join(ROOT, 'renderer/bench/index.html') },
  },
});

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x').pathname;
  const file = path.join(out, url === '/' ? 'bench/index.html' : url);
  if (!file.startsWith(out) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader',
    '--enable-precise-memory-info',
    '--js-flags=--expose-gc',
  ],
});

interface Row {
  size: string;
  prewarm: number;
  drawn: number;
  prep: number;
  first: number;
  complete: number;
  heap: number | null;
  pan: MeasuredFrames;
  hover: MeasuredFrames;
  lat: Latencies;
}

const STEPS = Number(process.env.BENCH_FRAMES ?? 20);
const rows: Row[] = [];
try {
  for (const { n, e } of sizes) {
    const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    page.on('pageerror', (err) => console.error('page error:', err.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'bench' in globalThis);
    const bench = <T>(f: (b: BenchApi, arg: [number, number]) => T, arg: [number, number] = [0, 0]) =>
      page.evaluate(
        ([src, a]) =>
          new Function('b', 'arg', `return (${src})(b, arg)`)(
            (globalThis as unknown as { bench: BenchApi }).bench,
            a,
          ),
        [f.toString(), arg] as const,
      ) as Promise<Awaited<T>>;
    // BENCH_PROFILE=dir: a CPU profile of the load (data → complete) goes to dir/load-N-E.cpuprofile.
    const profileDir = process.env.BENCH_PROFILE;
    const cdp = profileDir ? await page.context().newCDPSession(page) : null;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    const prewarm = await bench((b) => b.prewarmMs());
    const loaded = await bench((b, [n, e]) => b.load(n, e), [n, e]);
    if (cdp && profileDir) {
      const { profile } = await cdp.send('Profiler.stop');
      fs.mkdirSync(profileDir, { recursive: true });
      fs.writeFileSync(path.join(profileDir, `load-${n}-${e}.cpuprofile`), JSON.stringify(profile));
      await cdp.detach();
    }
    const log = (m: string) => process.stderr.write(`[${n}/${e}] ${m}\n`);
    log(
      `shaders prewarmed at page start in ${prewarm.toFixed(0)} ms (as the app does at start-up), ready in ${loaded.firstFrameMs.toFixed(0)} ms, complete in ${loaded.completeMs.toFixed(0)} ms, ${loaded.drawnEdges} edges drawn`,
    );
    const heap = await bench((b) => b.heapMb());
    const waitFrame = async (before: number) => {
      await page.waitForFunction(
        (c) => (globalThis as unknown as { bench: BenchApi }).bench.frameCount() > c,
        before,
        { timeout: 120_000 },
      );
    };

    // Pan: a real mouse drag (sigma's captor, so large graphs hide edges while moving).
    let from = await bench((b) => b.frameCount());
    await page.mouse.move(800, 450);
    await page.mouse.down();
    for (let i = 1; i <= STEPS; i++) {
      const c = await bench((b) => b.frameCount());
      await page.mouse.move(800 + 120 * Math.sin(i / 3), 450 + 80 * Math.cos(i / 3));
      await waitFrame(c);
    }
    await page.mouse.up();
    const pan = await bench((b, [f]) => b.framesSince(f), [from, 0]);
    log(`panned (${pan.frames} frames)`);
    await page.waitForTimeout(500);

    // Hover: the mouse moves from node to node (neighbourhood highlighted each time), with a
    // step off the nodes in between so every target is a fresh enter.
    const targets = await bench((b, [k]) => b.nodeTargets(k), [STEPS, 0]);
    const latN = async (kind: 'hoverN' | 'clickN') => (await bench((b) => b.latencies()))[kind];
    const waitLat = async (kind: 'hoverN' | 'clickN', before: number) => {
      const t0 = Date.now();
      while ((await latN(kind)) <= before && Date.now() - t0 < 60_000) await page.waitForTimeout(5);
    };
    from = await bench((b) => b.frameCount());
    for (const t of targets) {
      // Off the graph first (the stage's top-left corner, inside its padding: no node there).
      await page.mouse.move(3, 3);
      await page.waitForTimeout(30);
      const before = await latN('hoverN');
      await page.mouse.move(t.x, t.y);
      await waitLat('hoverN', before);
      log(`hover ${t.id}: ${(await latN('hoverN')) > before ? 'shown' : 'TIMED OUT'}`);
    }
    const hover = await bench((b, [f]) => b.framesSince(f), [from, 0]);
    // Click: select nodes (the first few targets).
    for (const t of targets.slice(0, Math.min(8, targets.length))) {
      const before = await latN('clickN');
      await page.mouse.click(t.x, t.y);
      await waitLat('clickN', before);
    }
    const lat = await bench((b) => b.latencies());
    rows.push({
      size: `${loaded.nodes} / ${loaded.edges}`,
      prewarm,
      drawn: loaded.drawnEdges,
      prep: loaded.prepMs,
      first: loaded.firstFrameMs,
      complete: loaded.completeMs,
      heap,
      pan,
      hover,
      lat,
    });
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
  fs.rmSync(out, { recursive: true, force: true });
}

const f = (v: number | null, d = 0) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(d));
console.log(
  `\nsigma 4 render bench · headless Chromium, SwiftShader (CPU) WebGL2 · 1600×900 · ${os.cpus().length} CPUs · load ${os.loadavg()[0].toFixed(1)}`,
);
console.log(
  'frame = render start → GPU finished (gl.finish); js = main-thread part of it (what a real GPU leaves)\n',
);
console.log(
  '| nodes / edges    | drawn edges | shaders prewarmed ms | prep ms | ready (first frame) ms | complete ms | JS heap MB | pan frame median / p95 ms | hover frame median / p95 ms | hover latency median / p95 ms (n) | click latency median / p95 ms (n) |',
);
console.log(
  '|------------------|------------:|---------------------:|--------:|-----------------------:|------------:|-----------:|--------------------------:|----------------------------:|----------------------------------:|----------------------------------:|',
);
for (const r of rows) {
  console.log(
    `| ${r.size.padEnd(16)} | ${String(r.drawn).padStart(11)} | ${f(r.prewarm).padStart(20)} | ${f(r.prep).padStart(7)} | ${f(r.first).padStart(22)} | ${f(r.complete).padStart(11)} | ${f(r.heap, 1).padStart(10)} | ${`${f(r.pan.total.median, 1)} / ${f(r.pan.total.p95, 1)}`.padStart(25)} | ${`${f(r.hover.total.median, 1)} / ${f(r.hover.total.p95, 1)}`.padStart(27)} | ${`${f(r.lat.hover.median, 1)} / ${f(r.lat.hover.p95, 1)} (${r.lat.hoverN})`.padStart(33)} | ${`${f(r.lat.click.median, 1)} / ${f(r.lat.click.p95, 1)} (${r.lat.clickN})`.padStart(33)} |`,
  );
}
