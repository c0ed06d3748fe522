/**
 * Engine side of bench/forward.ts, run in a child process so that each phase's peak RSS is
 * its own. argv[2] is a JSON `EngineChildArgs`; the result is printed as one line
 * `BENCH_RESULT <json>` on stdout.
 *
 * - compile: open the model (+ transcoders) and build the forward graph (in memory: it holds
 *   no weights; `cacheRoot` is unused);
 * - run: create the forward pass's sessions, then for each prompt length one
 *   warm-up pass and `repeat` timed passes fetching logits (+ every layer's transcoder
 *   activations); the last pass's logits go to `outDir/engine-logits-<T>.f32`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileForward } from '../electron/engine/model/forward-graph.ts';
import { ForwardPass } from '../electron/engine/model/forward-pass.ts';
import { openModel } from '../electron/engine/model/open-model.ts';
import { transcoderHookNames } from '../electron/engine/model/transcoder-encoder.ts';
import { WeightFeeder } from '../electron/engine/model/weight-feeder.ts';
import { loadTranscoderSet } from '../electron/engine/transcoders/load.ts';

export const RESULT_PREFIX = 'BENCH_RESULT ';

export interface EngineChildArgs {
  mode: 'compile' | 'run';
  modelDir: string;
  transcoderDir?: string;
  cacheRoot: string;
  threads: number;
  /** JSON file {"<T>": [ids...]} (run only). */
  tokensFile?: string;
  outDir?: string;
  repeat?: number;
}

export interface EngineCompileResult {
  openMs: number;
  compileMs: number;
  maxRssKb: number;
}

export interface EngineRunResult {
  openMs: number;
  sessionMs: number;
  hooks: number;
  runs: { tokens: number; timesMs: number[]; activeFraction: number[] }[];
  maxRssKb: number;
}

async function main(args: EngineChildArgs): Promise<EngineCompileResult | EngineRunResult> {
  let t0 = performance.now();
  const model = openModel(args.modelDir);
  const set = args.transcoderDir ? loadTranscoderSet(args.transcoderDir) : undefined;
  const openMs = performance.now() - t0;
  try {
    if (args.mode === 'compile') {
      const c = compileForward(model, new WeightFeeder(), { transcoders: set });
      return { openMs, compileMs: c.compileMs, maxRssKb: maxRssKb() };
    }
    t0 = performance.now();
    const fp = await ForwardPass.create(model, {
      transcoders: set,
      provider: 'cpu',
      threads: args.threads,
    });
    const sessionMs = performance.now() - t0;
    try {
      const actHooks = set ? Array.from({ length: set.nLayers }, (_, l) => transcoderHookNames(l).acts) : [];
      const hooks = ['logits', ...actHooks];
      const tokens = JSON.parse(fs.readFileSync(args.tokensFile ?? '', 'utf8')) as Record<string, number[]>;
      const runs: EngineRunResult['runs'] = [];
      for (const [len, ids] of Object.entries(tokens).sort((a, b) => Number(a[0]) - Number(b[0]))) {
        let out = await fp.run(ids, hooks); // warm-up
        const timesMs: number[] = [];
        for (let i = 0; i < (args.repeat ?? 5); i++) {
          const t = performance.now();
          out = await fp.run(ids, hooks);
          timesMs.push(performance.now() - t);
        }
        const logits = out.get('logits')!.data;
        fs.writeFileSync(
          path.join(args.outDir ?? '.', `engine-logits-${len}.f32`),
          new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength),
        );
        const activeFraction = actHooks.map((h) => activeAfterBos(out.get(h)!.data, ids.length));
        runs.push({ tokens: Number(len), timesMs, activeFraction });
      }
      return {
        openMs,
        sessionMs,
        hooks: hooks.length,
        runs,
        maxRssKb: maxRssKb(),
      };
    } finally {
      await fp.close();
    }
  } finally {
    set?.close();
    model.close();
  }
}

function maxRssKb(): number {
  return process.resourceUsage().maxRSS;
}

/** Fraction of non-zero activations over positions 1.. (position 0 is zeroed by design). */
function activeAfterBos(acts: Float32Array, tokens: number): number {
  const width = acts.length / tokens;
  let n = 0;
  for (let i = width; i < acts.length; i++) if (acts[i] !== 0) n++;
  return tokens > 1 ? n / (acts.length - width) : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(JSON.parse(process.argv[2] ?? '{}') as EngineChildArgs).then(
    (r) => process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
