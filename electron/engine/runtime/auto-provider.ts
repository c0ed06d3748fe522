/**
 * The provider a choice runs on, settled before any real graph is made (what stays resident
 * depends on it). An explicit provider is used as is (an error when it is not installed; one
 * that is but cannot start fails at its first session). `auto` starts each installed candidate
 * (CUDA, WebGPU, CPU) on a small matrix product and takes the fastest: where CUDA and WebGPU are
 * both present, the faster of them, and where the only "GPU" is a software adapter (SwiftShader)
 * or a weak one, the CPU. Settled once per thread, or pinned by `CIRCUIT_AUTO_PROVIDER` (a parent
 * that has settled it passes its choice to its job workers, so they agree with how it
 * scheduled them; a user may pin it too).
 */
import { EngineError } from '../errors.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import { type ProviderChoice, type ProviderName, providerCandidates } from './providers.ts';
import { createSession, ort, releaseSession, runSession } from './session.ts';

/** The probe: an [M, K]·[K, N] float32 product, both operands fed from the host at each run. */
const PROBE = { m: 256, k: 1024, n: 1024 };
/** Timed runs after the warm-up (a provider far behind the best so far stops after one). */
const PROBE_RUNS = 3;

export interface ProviderTiming {
  provider: ProviderName;
  /** Best of a few runs of the probe, after a warm-up; null when the provider did not start. */
  ms: number | null;
  error?: string;
}

function probeGraph(): Uint8Array {
  const g = new GraphBuilder('provider-probe');
  const a = g.input('a', 'float32', [PROBE.m, PROBE.k]);
  const b = g.input('b', 'float32', [PROBE.k, PROBE.n]);
  g.output(g.matmul(a, b), 'c', 'float32', [PROBE.m, PROBE.n]);
  return g.serialize();
}

/** Times the probe on each candidate, in order (a provider that cannot start gets its error). */
export async function measureProviders(candidates: readonly ProviderName[]): Promise<ProviderTiming[]> {
  const graph = probeGraph();
  const operand = (rows: number, cols: number) =>
    new ort.Tensor(
      'float32',
      Float32Array.from({ length: rows * cols }, (_, i) => ((i * 2654435761) % 1024) / 1024 - 0.5),
      [rows, cols],
    );
  const feeds = { a: operand(PROBE.m, PROBE.k), b: operand(PROBE.k, PROBE.n) };
  const timings = new Map<ProviderName, ProviderTiming>();
  let fastest = Number.POSITIVE_INFINITY;
  // The CPU first (it always starts, and fast): a slow adapter then stops after one timed run.
  for (const provider of [...candidates].reverse()) {
    let session: ort.InferenceSession | undefined;
    try {
      session = (await createSession(graph, { provider })).session;
      await runSession(session, feeds); // warm-up: kernels compiled, buffers made
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < PROBE_RUNS; i++) {
        const t0 = performance.now();
        await runSession(session, feeds);
        best = Math.min(best, performance.now() - t0);
        if (best > 4 * fastest) break; // cannot win
      }
      fastest = Math.min(fastest, best);
      timings.set(provider, { provider, ms: best });
    } catch (e) {
      timings.set(provider, { provider, ms: null, error: (e as Error).message.trim() });
    } finally {
      if (session) await releaseSession(session);
    }
  }
  return candidates.map((p) => timings.get(p) as ProviderTiming);
}

/** The fastest provider that started (ties: the earlier candidate), or null when none did. */
export function fastestProvider(timings: readonly ProviderTiming[]): ProviderName | null {
  let best: ProviderTiming | null = null;
  for (const t of timings) if (t.ms !== null && (best === null || t.ms < (best.ms as number))) best = t;
  return best?.provider ?? null;
}

const settled = new Map<string, Promise<ProviderName>>();
/** The same, once known (settledProvider is synchronous). */
const known = new Map<string, ProviderName>();

export const AUTO_PROVIDER_ENV = 'CIRCUIT_AUTO_PROVIDER';

/** `CIRCUIT_AUTO_PROVIDER` when set: one of `candidates` (else an error naming the variable). */
function pinnedAutoProvider(candidates: readonly ProviderName[]): ProviderName | undefined {
  const pinned = process.env[AUTO_PROVIDER_ENV];
  if (!pinned) return undefined;
  if (!(candidates as readonly string[]).includes(pinned))
    throw new EngineError(
      'argument',
      `${AUTO_PROVIDER_ENV}=${pinned.slice(0, 40)}: auto can only pin an installed provider (${candidates.join(', ')})`,
      { field: AUTO_PROVIDER_ENV },
    );
  return pinned as ProviderName;
}

/**
 * The provider `choice` runs on in this thread when that is already known without a probe: an
 * explicit provider, a pinned auto, or an auto this thread has settled; else undefined.
 */
export function settledProvider(choice: ProviderChoice): ProviderName | undefined {
  if (choice !== 'auto') return choice;
  const candidates = providerCandidates(choice);
  return pinnedAutoProvider(candidates) ?? known.get(candidates.join(','));
}

export async function resolveProvider(
  choice: ProviderChoice = 'cpu',
  onWarning?: (message: string) => void,
): Promise<ProviderName> {
  const candidates = providerCandidates(choice);
  if (choice !== 'auto') return candidates[0];
  const pinned = pinnedAutoProvider(candidates);
  if (pinned) return pinned;
  const key = candidates.join(',');
  let p = settled.get(key);
  if (!p) {
    p = measureProviders(candidates).then((timings) => {
      const chosen = fastestProvider(timings) ?? 'cpu';
      const failed = timings.filter((t) => t.ms === null);
      if (failed.length) {
        onWarning?.(
          `provider auto: ${failed.map((t) => `${t.provider} did not start (${t.error})`).join('; ')}`,
        );
      }
      if (chosen !== candidates[0]) {
        const { m, k, n } = PROBE;
        const ran = timings
          .filter((t) => t.ms !== null)
          .map((t) => `${t.provider} ${(t.ms as number).toFixed(1)} ms`);
        onWarning?.(`provider auto: using ${chosen} (a ${m}×${k}·${k}×${n} product: ${ran.join(', ')})`);
      }
      known.set(key, chosen);
      return chosen;
    });
    settled.set(key, p);
  }
  return p;
}
