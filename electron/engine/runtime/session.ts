/**
 * ONNX Runtime sessions over compiled graphs, with the provider choice applied: an explicit
 * provider that fails to start is an error naming it; `auto` falls back (CUDA → WebGPU →
 * CPU) and reports each fallback through `onWarning`. (The engine settles `auto` to one
 * provider first, by speed: auto-provider.ts; this fallback serves graphs made without it.)
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.ts';
import { nativeSection } from './native-section.ts';
import { type ProviderChoice, type ProviderName, providerCandidates } from './providers.ts';

export interface SessionOptions {
  provider?: ProviderChoice;
  /** Intra-op threads for CPU (default: ONNX Runtime's choice, all cores). */
  threads?: number;
  onWarning?: (message: string) => void;
  /**
   * ONNX Runtime's CPU memory arena (default on). Off for the many small sessions of one model
   * (per-layer forward segments, per-top-layer backward graphs): each session's arena keeps its
   * peak, so 27 backward sessions would each hold a batch's worth of gradients.
   */
  cpuMemArena?: boolean;
  /**
   * Outputs stay in device memory on WebGPU (ONNX Runtime's `gpu-buffer` location), to be fed
   * to other sessions of it as they are; ignored elsewhere (device-tensors.ts says why for CUDA).
   */
  keepOutputsOnDevice?: boolean;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ProviderName;
}

/** `model`: a graph file, or a graph built in memory (the engine's graphs hold no weights). */
export async function createSession(
  model: string | Uint8Array,
  opts: SessionOptions = {},
): Promise<OpenedSession> {
  const modelPath = typeof model === 'string' ? model : '<graph built in memory>';
  const candidates = providerCandidates(opts.provider ?? 'cpu');
  const errors: string[] = [];
  for (const provider of candidates) {
    try {
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.threads ?? 0,
        logSeverityLevel: ortLogLevel(),
        enableCpuMemArena: opts.cpuMemArena ?? true,
        ...(opts.keepOutputsOnDevice && provider === 'webgpu'
          ? { preferredOutputLocation: 'gpu-buffer' }
          : {}),
        ...providerExtras(provider),
        ...profiling(),
      };
      const session = await nativeSection(() =>
        typeof model === 'string'
          ? ort.InferenceSession.create(model, sessionOptions)
          : ort.InferenceSession.create(model, sessionOptions),
      );
      if (errors.length) opts.onWarning?.(`falling back to the ${provider} provider: ${errors.join('; ')}`);
      return { session, provider };
    } catch (e) {
      const message = `${provider}: ${(e as Error).message.trim()}${providerHint(provider, e as Error)}`;
      if (opts.provider !== 'auto') {
        throw new EngineError(
          'provider',
          `could not create an ONNX Runtime session on the ${provider} provider: ${message}`,
          {
            file: modelPath,
          },
        );
      }
      errors.push(message);
    }
  }
  throw new EngineError('provider', `no execution provider could run the model: ${errors.join('; ')}`, {
    file: modelPath,
  });
}

/**
 * ONNX Runtime's log level: errors only, unless `CIRCUIT_ORT_LOG_LEVEL` (0 verbose … 4 fatal)
 * asks for more, e.g. 1 lists the nodes a GPU provider leaves to the CPU.
 */
function ortLogLevel(): 0 | 1 | 2 | 3 | 4 {
  const v = Number(process.env.CIRCUIT_ORT_LOG_LEVEL ?? 3);
  return (Number.isInteger(v) && v >= 0 && v <= 4 ? v : 3) as 0 | 1 | 2 | 3 | 4;
}

/**
 * A provider's extra session entries. For WebGPU (ONNX Runtime's `ep.webgpuexecutionprovider.*`):
 * its int64 kernels are off by default, so the graph's index ops (positions, slots) run on the
 * CPU with copies around them, and `CIRCUIT_WEBGPU_INT64=1` turns them on; `CIRCUIT_WEBGPU_OPTIONS`
 * (`key=value,…`, e.g. `validationMode=disabled,maxNumPendingDispatches=128`) passes any other
 * setting through, for measuring on a GPU. The device's context takes its settings from the
 * process's first WebGPU session, so every WebGPU session (device uploads too) gets these.
 */
export function providerExtras(provider: ProviderName): Pick<ort.InferenceSession.SessionOptions, 'extra'> {
  if (provider !== 'webgpu') return {};
  const entries: Record<string, string> = {};
  if (process.env.CIRCUIT_WEBGPU_INT64 === '1') entries.enableInt64 = '1';
  for (const item of (process.env.CIRCUIT_WEBGPU_OPTIONS ?? '').split(',')) {
    if (!item.trim()) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new EngineError('argument', `CIRCUIT_WEBGPU_OPTIONS: "${item}" is not key=value`, {
        field: 'CIRCUIT_WEBGPU_OPTIONS',
      });
    }
    entries[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return Object.keys(entries).length ? { extra: { ep: { webgpuexecutionprovider: entries } } } : {};
}

let profiledSessions = 0;

/**
 * `CIRCUIT_ORT_PROFILE=DIR`: every session records an ONNX Runtime profile (kernel times; on
 * WebGPU also each dispatch's GPU time), written to DIR/session-N_<time>.json when the session
 * is released (bench/gpu-profile.ts sums them up). Profiling slows runs: for benchmarks only.
 */
function profiling(): Pick<ort.InferenceSession.SessionOptions, 'enableProfiling' | 'profileFilePrefix'> {
  const dir = process.env.CIRCUIT_ORT_PROFILE;
  if (!dir) return {};
  return { enableProfiling: true, profileFilePrefix: path.join(dir, `session-${++profiledSessions}`) };
}

/** What to do about a provider that failed to start, where we know. */
function providerHint(provider: ProviderName, e: Error): string {
  if (provider === 'webgpu' && /adapter/i.test(e.message)) {
    return ' — WebGPU needs a GPU adapter: on Linux, Vulkan (libvulkan1) and a GPU driver; use --provider cpu or auto';
  }
  return '';
}

/**
 * `session.run`, as a native section: a job's worker is never terminated inside it
 * (native-section.ts). Every run of the engine goes through here.
 */
export function runSession(
  session: ort.InferenceSession,
  feeds: ort.InferenceSession.FeedsType,
  fetches?: readonly string[],
): Promise<ort.InferenceSession.ReturnType> {
  return nativeSection(() => (fetches ? session.run(feeds, [...fetches]) : session.run(feeds)));
}

/** `session.release`, as a native section (it frees native and device memory). */
export function releaseSession(session: ort.InferenceSession): Promise<void> {
  return nativeSection(() => session.release());
}

export { ort };
