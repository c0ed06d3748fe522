/**
 * ONNX Runtime sessions over compiled graphs, with the provider choice applied: an explicit
 * provider that fails to start is an error naming it; `auto` falls back (CUDA → WebGPU →
 * CPU) and reports each fallback through `onWarning`.
 */
import * as ort from 'onnxruntime-node';
import { EngineError } from '../errors.ts';
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
        ...(provider === 'webgpu' ? webgpuExtra() : {}),
      };
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, sessionOptions)
          : await ort.InferenceSession.create(model, sessionOptions);
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
 * WebGPU's int64 kernels are off by default in ONNX Runtime, so the graph's index ops
 * (positions, slots) would run on the CPU with copies around them;
 * `CIRCUIT_WEBGPU_INT64=1` turns them on (an experiment until measured on a GPU).
 */
function webgpuExtra(): Pick<ort.InferenceSession.SessionOptions, 'extra'> {
  if (process.env.CIRCUIT_WEBGPU_INT64 !== '1') return {};
  return { extra: { ep: { webgpuexecutionprovider: { enableInt64: '1' } } } };
}

/** What to do about a provider that failed to start, where we know. */
function providerHint(provider: ProviderName, e: Error): string {
  if (provider === 'webgpu' && /adapter/i.test(e.message)) {
    return ' — WebGPU needs a GPU adapter: on Linux, Vulkan (libvulkan1) and a GPU driver; use --provider cpu or auto';
  }
  return '';
}

export { ort };
