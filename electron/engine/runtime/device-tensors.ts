/**
 * Tensors kept on the execution provider's device between runs. A GPU session copies every
 * host tensor it is fed to the device on every run; what stays the same across runs (weights,
 * an attribution's frozen patterns and source vectors) is uploaded once instead, as a tensor
 * whose data lives in device memory (ONNX Runtime's `gpu-buffer` location), and fed as is.
 *
 * The upload is a session run: an Identity graph whose output is asked to stay on the device
 * (`preferredOutputLocation`). Sessions of one provider share its device, so the tensor can be
 * fed to any other session of the same provider. On the CPU provider an upload is the host
 * tensor itself, so the same code runs everywhere.
 */
import { EngineError } from '../errors.ts';
import { GraphBuilder } from '../onnx/graph-builder.ts';
import type { ElemType } from '../onnx/model-proto.ts';
import { nativeSection } from './native-section.ts';
import type { ProviderName } from './providers.ts';
import { ort, providerExtras, releaseSession, runSession } from './session.ts';

export interface DeviceTensors {
  readonly provider: ProviderName;
  /** True when uploads land in device memory (a GPU provider). */
  readonly onDevice: boolean;
  /** The tensor on the device; on the CPU, `host` itself. The host array may be dropped after. */
  upload(host: ort.Tensor): Promise<ort.Tensor>;
  /** Bytes uploaded so far, and the time it took (figures for reports). */
  readonly uploadedBytes: number;
  readonly uploadMs: number;
  /** Frees a tensor this returned (device memory); a no-op on the CPU. */
  dispose(tensor: ort.Tensor): void;
  release(): Promise<void>;
}

const MIB = 1024 * 1024;
const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

/**
 * A tensor larger than the GPU's largest buffer (WebGPU's maxBufferSize: 1 GiB on SwiftShader,
 * 2–4 GiB on many adapters): it cannot be a GPU input at all. forward-pass.ts keeps an oversized
 * embedding on the host instead (logits on the CPU); anything else cannot run on that GPU.
 */
export class DeviceBufferLimitError extends EngineError {
  constructor(
    readonly tensorBytes: number,
    readonly limitBytes: number,
    dims: readonly number[],
    tensor?: string,
  ) {
    super(
      'resources',
      `a ${tensor ? 'weight' : 'tensor'} [${dims.join(', ')}] of ${gb(tensorBytes)} is larger than this GPU's largest buffer (${gb(limitBytes)})`,
      tensor ? { tensor } : {},
    );
  }
}

/** The limit a WebGPU (Dawn) "exceeds the max buffer size limit (N)" error names (or ours), or null. */
export function bufferLimitOf(error: unknown): number | null {
  if (error instanceof DeviceBufferLimitError) return error.limitBytes;
  const m = /exceeds the max buffer size limit \((\d+)\)/.exec(
    error instanceof Error ? error.message : String(error),
  );
  return m ? Number(m[1]) : null;
}

/**
 * The GPU's largest buffer as far as it is known before a tensor meets it: `CIRCUIT_DEVICE_MAX_BUFFER_MB`
 * when set (else unknown: Infinity; an upload past the real limit then says what it is).
 */
export function deviceMaxBufferBytes(): number {
  const v = process.env.CIRCUIT_DEVICE_MAX_BUFFER_MB;
  if (v === undefined || v === '') return Number.POSITIVE_INFINITY;
  const mb = Number(v);
  if (!Number.isFinite(mb) || mb <= 0)
    throw new EngineError(
      'argument',
      `CIRCUIT_DEVICE_MAX_BUFFER_MB must be a positive number of MiB, got ${v.slice(0, 40)}`,
      {
        field: 'CIRCUIT_DEVICE_MAX_BUFFER_MB',
      },
    );
  return mb * MIB;
}

const ELEM: Record<string, ElemType> = { float32: 'float32', float16: 'float16', int64: 'int64' };

class HostTensors implements DeviceTensors {
  readonly onDevice = false;
  readonly uploadedBytes = 0;
  readonly uploadMs = 0;
  constructor(readonly provider: ProviderName) {}
  async upload(host: ort.Tensor): Promise<ort.Tensor> {
    return host;
  }
  dispose(): void {}
  async release(): Promise<void> {}
}

class GpuTensors implements DeviceTensors {
  readonly onDevice = true;
  uploadedBytes = 0;
  uploadMs = 0;
  /** One Identity session per element type and rank (dims are symbolic). */
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(readonly provider: ProviderName) {}

  private session(type: string, rank: number): Promise<ort.InferenceSession> {
    const key = `${type}/${rank}`;
    let s = this.sessions.get(key);
    if (!s) {
      const elem = ELEM[type];
      if (!elem) throw new Error(`cannot keep a ${type} tensor on the device`);
      const g = new GraphBuilder('upload');
      const dims = Array.from({ length: rank }, (_, i) => `d${i}`);
      g.input('x', elem, dims);
      g.output(g.op('Identity', ['x']), 'y', elem, dims);
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [this.provider],
        // Kept as a copy: an optimizer may not fold the Identity into the graph's input.
        graphOptimizationLevel: 'disabled',
        logSeverityLevel: 3,
        preferredOutputLocation: 'gpu-buffer',
        // The provider's settings, as every other session of it has (its first session sets the device's).
        ...providerExtras(this.provider),
      };
      s = nativeSection(() => ort.InferenceSession.create(g.serialize(), options));
      this.sessions.set(key, s);
    }
    return s;
  }

  async upload(host: ort.Tensor): Promise<ort.Tensor> {
    if (host.location !== 'cpu') return host;
    const bytes = (host.data as ArrayBufferView).byteLength;
    const known = deviceMaxBufferBytes();
    if (bytes > known) throw new DeviceBufferLimitError(bytes, known, host.dims);
    const session = await this.session(host.type, host.dims.length);
    const t0 = performance.now();
    let y: ort.Tensor;
    try {
      ({ y } = await runSession(session, { x: host }));
    } catch (e) {
      const limit = bufferLimitOf(e);
      if (limit !== null) throw new DeviceBufferLimitError(bytes, limit, host.dims);
      throw e;
    }
    this.uploadMs += performance.now() - t0;
    if (y.location !== 'gpu-buffer') {
      throw new Error(`the ${this.provider} provider kept an uploaded tensor in ${y.location} memory`);
    }
    this.uploadedBytes += (host.data as ArrayBufferView).byteLength;
    return y;
  }

  dispose(tensor: ort.Tensor): void {
    if (tensor.location === 'gpu-buffer') tensor.dispose();
  }

  async release(): Promise<void> {
    const sessions = await Promise.allSettled(this.sessions.values());
    this.sessions.clear();
    await Promise.all(sessions.map((s) => (s.status === 'fulfilled' ? releaseSession(s.value) : undefined)));
  }
}

/**
 * Device tensors for `provider`. `CIRCUIT_DEVICE_TENSORS=0` keeps every tensor on the host
 * (each run copies it), for comparing the two on a GPU. CUDA keeps them on the host too:
 * onnxruntime-node's `gpu-buffer` location is WebGPU's buffer (its binding makes a `WebGPU_Buf`
 * memory info for it), so a CUDA session can neither return nor take a tensor in its device's
 * memory through the JS API; each CUDA run copies its inputs over.
 */
export function deviceTensors(provider: ProviderName): DeviceTensors {
  if (provider !== 'webgpu' || process.env.CIRCUIT_DEVICE_TENSORS === '0') return new HostTensors(provider);
  return new GpuTensors(provider);
}
