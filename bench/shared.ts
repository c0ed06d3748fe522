/** Helpers shared by the benchmarks: child processes, the PyTorch probe, plain-text tables. */
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ort } from '../electron/engine/runtime/session.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What a table cell shows for a missing value. */
export const NA = '—';

/**
 * Whether the module at `metaUrl` (its `import.meta.url`), named `fileName`, is the script being
 * run. The name matters when a bench is bundled (bench/device/pack.sh): every module of the bundle
 * shares the bundle's URL, and a bundled module's own command line must not run.
 */
export function isMainScript(metaUrl: string, fileName: string): boolean {
  return (
    metaUrl === pathToFileURL(process.argv[1] ?? '').href &&
    path.basename(fileURLToPath(metaUrl)) === fileName
  );
}

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Runs a child; its stderr passes through; resolves with the JSON on its result line. */
export function runChild<T>(cmd: string, args: string[], resultPrefix: string | null): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(
          new Error(
            `${path.basename(args.find((a) => /\.(ts|py)$/.test(a)) ?? cmd)} exited with ${code ?? signal}`,
          ),
        );
        return;
      }
      const lines = out.trim().split('\n');
      const line = resultPrefix
        ? lines
            .reverse()
            .find((l) => l.startsWith(resultPrefix))
            ?.slice(resultPrefix.length)
        : lines[lines.length - 1];
      try {
        resolve(JSON.parse(line ?? '') as T);
      } catch {
        reject(new Error(`no result from ${cmd}: ${out.slice(-500)}`));
      }
    });
  });
}

/** The PyTorch reference for attribution traces (bench/trace.ts, bench/scale.ts). */
const ATTRIBUTION_REFERENCE = path.join(ROOT, 'native', 'reference', 'bench_attribution.py');

/** What native/reference/bench_attribution.py replays: a trace's exported targets and engine rows. */
export interface AttributionReferenceRun {
  modelDir: string;
  transcoderDir: string;
  targetsFile: string;
  rowsFile: string;
  repeat: number;
  warmup: number;
  threads: number;
  /** bench_attribution.py's --malloc (its own default when absent). */
  malloc?: string;
}

/** Runs bench_attribution.py on the same batches as the engine; resolves with its JSON result. */
export function runAttributionReference<T>(python: string, r: AttributionReferenceRun): Promise<T> {
  return runChild<T>(
    python,
    [
      ATTRIBUTION_REFERENCE,
      '--model',
      r.modelDir,
      '--transcoders',
      r.transcoderDir,
      '--targets',
      r.targetsFile,
      '--engine-rows',
      r.rowsFile,
      '--repeat',
      String(r.repeat),
      '--warmup',
      String(r.warmup),
      '--threads',
      String(r.threads),
      ...(r.malloc === undefined ? [] : ['--malloc', r.malloc]),
    ],
    null,
  );
}

export function torchAvailable(python: string): string | null {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  return (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`).slice(0, 200);
}

export function table(headers: string[], rows: string[][], leftColumns = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function ratio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? NA : `${x.toFixed(2)}×`;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  load1: number;
}

export interface EngineInfo {
  onnxruntime: string;
  provider: 'cpu';
  threads: number;
}

/** The machine a report was measured on; `load1` is the load average when the bench started. */
export function machineInfo(load1: number): MachineInfo {
  const cpus = os.cpus();
  return { cpu: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length, memoryBytes: os.totalmem(), load1 };
}

export function engineInfo(threads: number): EngineInfo {
  return { onnxruntime: ort.env.versions.node ?? ort.env.versions.common, provider: 'cpu', threads };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Milliseconds with as many decimals as they deserve. */
export function ms(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return NA;
  if (x < 10) return x.toFixed(2);
  if (x < 100) return x.toFixed(1);
  return x.toFixed(0);
}

/** A difference in scientific notation ('mismatch' when it could not be computed). */
export function sci(x: number | null | undefined): string {
  if (x === null || x === undefined) return NA;
  if (Number.isNaN(x)) return 'mismatch';
  return x === 0 ? '0' : x.toExponential(1);
}

/** The tables on stdout; with --json they go to stderr and stdout gets the report as one line. */
export function printReport(text: string, report: unknown, json: boolean): void {
  if (json) {
    process.stderr.write(text);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(text);
  }
}

/** Runs a benchmark's main and exits with its code (2 when it throws). */
export function runBench(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      log(e instanceof Error ? e.message : String(e));
      process.exit(2);
    },
  );
}

/** The value after a flag on the command line. */
export interface FlagValue {
  /** The next argument, as it is. */
  value(): string;
  /** The next argument as an integer ≥ min. */
  int(min: number): number;
}

/**
 * Reads a benchmark's command line: `handle` takes each flag (reading its value through
 * `next`) and returns false for one it does not know, which throws with the usage; -h and
 * --help print the usage and exit 0.
 */
export function readFlags(
  argv: string[],
  usage: string,
  handle: (flag: string, next: FlagValue) => boolean,
): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-h' || flag === '--help') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    const value = (): string => {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      i++;
      return v;
    };
    const int = (min: number): number => {
      const s = value();
      const n = Number(s);
      if (!Number.isInteger(n) || n < min) throw new Error(`${flag} wants an integer ≥ ${min}, got ${s}`);
      return n;
    };
    if (!handle(flag, { value, int })) throw new Error(`unknown option ${flag}\n${usage}`);
  }
}

/** The options bench/forward.ts, bench/trace.ts and bench/scale.ts all have. */
export interface BenchFlags {
  python: string;
  torch: boolean;
  cacheDir: string;
  keep: boolean;
  json: boolean;
}

/** --python PATH, --no-torch, --cache-dir DIR, --keep, --json; false for any other flag. */
export function benchFlag(o: BenchFlags, flag: string, next: FlagValue): boolean {
  switch (flag) {
    case '--python':
      o.python = next.value();
      return true;
    case '--no-torch':
      o.torch = false;
      return true;
    case '--cache-dir':
      o.cacheDir = path.resolve(next.value());
      return true;
    case '--keep':
      o.keep = true;
      return true;
    case '--json':
      o.json = true;
      return true;
    default:
      return false;
  }
}

/** The trace settings and run options bench/trace.ts and bench/scale.ts share. */
export interface TraceBenchFlags extends BenchFlags {
  tokens: number;
  maxFeatureNodes: number;
  batchSize: number;
  maxNLogits: number;
  desiredLogitProb: number;
  threads: number;
  repeat: number;
  gemmSize: number;
}

/** The flags of TraceBenchFlags (and benchFlag's); false for any other flag. */
export function traceBenchFlag(o: TraceBenchFlags, flag: string, next: FlagValue): boolean {
  switch (flag) {
    case '--tokens':
      o.tokens = next.int(2);
      return true;
    case '--max-feature-nodes':
      o.maxFeatureNodes = next.int(1);
      return true;
    case '--batch-size':
      o.batchSize = next.int(1);
      return true;
    case '--max-n-logits':
      o.maxNLogits = next.int(1);
      return true;
    case '--desired-logit-prob': {
      const v = Number(next.value());
      if (!(v > 0 && v <= 1)) throw new Error('--desired-logit-prob is in (0, 1]');
      o.desiredLogitProb = v;
      return true;
    }
    case '--threads':
      o.threads = next.int(1);
      return true;
    case '--repeat':
      o.repeat = next.int(1);
      return true;
    case '--gemm-size':
      o.gemmSize = next.int(0);
      return true;
    default:
      return benchFlag(o, flag, next);
  }
}
