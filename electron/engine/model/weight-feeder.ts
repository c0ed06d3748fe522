/**
 * Weights enter the engine's ONNX graphs as graph inputs, not initializers: a graph holds no
 * weight bytes (it is built in memory in milliseconds and nothing is cached on disk), and the
 * engine decides what is resident. The feeder maps each weight input to a loader that reads
 * the tensor from its file in the stored dtype and decodes it to float32 only when a session
 * needs it.
 *
 * - resident weights are decoded once and shared by every graph of the model (forward,
 *   backward, frozen forward, interventions), so a weight is never held twice;
 * - streamed weights are decoded for one session run and dropped after it (big checkpoints run
 *   layer by layer, see forward-pass.ts).
 *
 * On a GPU provider, `ready()` moves the resident weights of a session to the device once
 * (runtime/device-tensors.ts) and drops their host arrays: runs are then fed the device
 * tensors, and no weight crosses the bus per run.
 *
 * `ready()` decodes the big resident weights of a session on several threads at once
 * (checkpoint/parallel-decode.ts), ahead of the uploads on a GPU (a window of decoded tensors
 * waits for the device, not the other way round); small models decode on first use, as before.
 */
import {
  type DecodePool,
  inOrderAhead,
  poolDecodable,
  sharedDecodePool,
} from '../checkpoint/parallel-decode.ts';
import type { TensorInfo } from '../checkpoint/tensor.ts';
import { bufferLimitOf, DeviceBufferLimitError, type DeviceTensors } from '../runtime/device-tensors.ts';
import { ort } from '../runtime/session.ts';

export interface FedWeight {
  /** The graph input's name. */
  input: string;
  dims: readonly number[];
  /**
   * Reads and decodes the tensor (float32, row-major, `dims`), into `out` when given (a reused
   * buffer: streamed weights are decoded into pooled arrays, not fresh ones).
   */
  load: (out?: Float32Array) => Float32Array;
  /** Kept after its first use (else decoded per run). */
  resident: boolean;
  /** The checkpoint tensor `load` decodes as is, when it is one (the decode pool can read it). */
  tensor?: TensorInfo;
}

export interface WeightFeederOptions {
  /**
   * Decode pool for big resident weights; null decodes on one thread. Default: the process's
   * pool, unless `CIRCUIT_PARALLEL_DECODE=0` (`=1`: the pool for any size).
   */
  pool?: DecodePool | null;
  /** A session's resident weights are decoded in parallel from this many bytes (float32) on. */
  parallelMinBytes?: number;
}

/** Below this (float32 bytes to decode for a session) threads cost more than they save. */
const PARALLEL_MIN_BYTES = 64 * 1024 * 1024;
/** Decoded tensors waiting for their upload at most (bytes); at least one is always decoded ahead. */
const DECODE_AHEAD_BYTES = 1024 * 1024 * 1024;

/** Bytes of a float32 tensor of `dims`, in 64-bit-safe Number arithmetic. */
export function float32Bytes(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 4);
}

export class WeightFeeder {
  private readonly weights = new Map<string, FedWeight>();
  /** The resident weights' tensors, decoded and made once (every run feeds the same ones). */
  private readonly residentTensors = new Map<string, ort.Tensor>();
  private residentTotal = 0;
  /** Feeds of sessions whose weights are all resident, by the session's inputNames array. */
  private residentFeeds = new WeakMap<readonly string[], Record<string, ort.Tensor>>();
  /** Largest bytes of streamed weights fed to one run (a memory figure for reports). */
  peakStreamedBytes = 0;
  /** Reusable arrays for streamed weights, by length, and those handed out since `recycle`. */
  private readonly pool = new Map<number, Float32Array[]>();
  private readonly lent: Float32Array[] = [];
  /** Where resident weights are kept when a GPU runs the sessions (see `ready`). */
  private device?: DeviceTensors;
  /** Resident weights held by the device (their tensors are the device's). */
  private readonly onDevice = new Set<string>();
  /** Host copies of resident weights that live on the device, decoded when asked for. */
  private readonly hostCopies = new Map<string, Float32Array>();
  /** Bytes of resident weights held in device memory. */
  deviceBytes = 0;
  /** Bytes of resident weights decoded by the pool. */
  poolDecodedBytes = 0;
  /** Wall time `ready` spent: decoding, and on a device uploading (the two overlap). */
  readyMs = 0;
  private readonly decodePool: DecodePool | null;
  private readonly parallelMinBytes: number;

  constructor(opts: WeightFeederOptions = {}) {
    // CIRCUIT_PARALLEL_DECODE: 0 decodes on one thread, 1 uses the pool whatever the size.
    const env = process.env.CIRCUIT_PARALLEL_DECODE;
    this.decodePool = opts.pool !== undefined ? opts.pool : env === '0' ? null : sharedDecodePool();
    this.parallelMinBytes = opts.parallelMinBytes ?? (env === '1' ? 0 : PARALLEL_MIN_BYTES);
  }

  /** Registers a weight input; a name registered twice keeps its first loader. */
  register(w: FedWeight): void {
    const existing = this.weights.get(w.input);
    if (!existing) this.weights.set(w.input, w);
    else if (w.resident && !existing.resident) this.weights.set(w.input, { ...existing, resident: true });
  }

  /** Whether `input` is a weight kept once decoded (in host memory, or a GPU's), not read per run. */
  isResident(input: string): boolean {
    return this.weights.get(input)?.resident === true;
  }

  /** Bytes of the weights decoded and kept. */
  get residentBytes(): number {
    return this.residentTotal;
  }

  /**
   * The tensor of one weight input: a resident one is decoded once and kept; a streamed one is
   * decoded into a pooled array that stays valid until the next `recycle()`.
   */
  private tensor(input: string, w: FedWeight): ort.Tensor {
    const kept = this.residentTensors.get(input);
    if (kept) return kept;
    const want = float32Bytes(w.dims) / 4;
    let data: Float32Array;
    if (w.resident) data = w.load();
    else {
      const buffer = this.pool.get(want)?.pop() ?? new Float32Array(want);
      data = w.load(buffer);
      this.lent.push(buffer);
    }
    if (data.length !== want) {
      throw new Error(`weight ${input} decoded to ${data.length} values, expected [${w.dims}]`);
    }
    const tensor = new ort.Tensor('float32', data, [...w.dims]);
    if (w.resident) {
      this.residentTensors.set(input, tensor);
      this.residentTotal += data.byteLength;
    }
    return tensor;
  }

  /** The decoded values of a resident weight input (shared, e.g. with the logit head). */
  residentValues(input: string): Float32Array {
    const w = this.weights.get(input);
    if (!w?.resident) throw new Error(`no resident weight is registered for graph input ${input}`);
    if (!this.onDevice.has(input)) return this.tensor(input, w).data as Float32Array;
    let host = this.hostCopies.get(input);
    if (!host) {
      host = w.load();
      this.hostCopies.set(input, host);
    }
    return host;
  }

  /** Keeps resident weights on `device` from now on (a GPU provider's sessions). */
  useDevice(device: DeviceTensors): void {
    this.device = device.onDevice ? device : undefined;
  }

  /**
   * Gets the resident weights among `inputNames` ready for runs. With a device, each is moved
   * there (decoded, uploaded, its host array dropped), in order, with at most DECODE_AHEAD_BYTES
   * of decoded tensors waiting for the device. On the CPU, big sessions' weights are decoded now
   * on the pool's threads; small ones, and streamed weights, are decoded by `feeds` as before.
   */
  async ready(inputNames: readonly string[]): Promise<void> {
    const device = this.device;
    const todo: Array<[string, FedWeight]> = [];
    let bytes = 0;
    for (const name of inputNames) {
      const w = this.weights.get(name);
      if (!w?.resident || this.onDevice.has(name)) continue;
      if (!device && this.residentTensors.has(name)) continue;
      todo.push([name, w]);
      bytes += float32Bytes(w.dims);
    }
    if (!todo.length) return;
    const pool = bytes >= this.parallelMinBytes ? this.decodePool : null;
    if (!device && !pool) return;
    const t0 = performance.now();
    const decode = ([name, w]: [string, FedWeight]): Promise<ort.Tensor> => {
      const kept = this.residentTensors.get(name);
      if (kept) return Promise.resolve(kept);
      if (pool && w.tensor && poolDecodable(w.tensor)) {
        return pool.decode(w.tensor).then((data) => {
          this.poolDecodedBytes += data.byteLength;
          return new ort.Tensor('float32', data, [...w.dims]);
        });
      }
      return Promise.resolve().then(() => new ort.Tensor('float32', w.load(), [...w.dims]));
    };
    let moved = false;
    try {
      const decoded = inOrderAhead(todo, ([, w]) => float32Bytes(w.dims), decode, DECODE_AHEAD_BYTES);
      for await (const [[name, w], host] of decoded) {
        const b = float32Bytes(w.dims);
        const kept = this.residentTensors.get(name);
        if (!device) {
          if (!kept) {
            this.residentTensors.set(name, host);
            this.residentTotal += b;
          }
          continue;
        }
        let onDevice: ort.Tensor;
        try {
          onDevice = await device.upload(host);
        } catch (e) {
          const limit = bufferLimitOf(e);
          if (limit === null) throw e;
          throw new DeviceBufferLimitError(b, limit, w.dims, name);
        }
        if (kept) this.residentTotal -= b;
        this.residentTensors.set(name, onDevice);
        this.onDevice.add(name);
        this.deviceBytes += b;
        moved = true;
      }
    } finally {
      // Tensors decoded ahead of a failure are dropped with their promises.
      this.readyMs += performance.now() - t0;
      // Memoized feeds may hold the host tensors just replaced.
      if (moved) this.residentFeeds = new WeakMap();
    }
  }

  /** Tensors for every weight input among `inputNames` (a session's inputs). */
  feeds(inputNames: readonly string[]): Record<string, ort.Tensor> {
    const memo = this.residentFeeds.get(inputNames);
    if (memo) return memo;
    const feeds: Record<string, ort.Tensor> = {};
    let streamed = 0;
    let allResident = true;
    for (const name of inputNames) {
      const w = this.weights.get(name);
      if (!w) continue;
      feeds[name] = this.tensor(name, w);
      if (!w.resident) {
        streamed += float32Bytes(w.dims);
        allResident = false;
      }
    }
    this.peakStreamedBytes = Math.max(this.peakStreamedBytes, streamed);
    if (allResident) this.residentFeeds.set(inputNames, feeds);
    return feeds;
  }

  /** Takes back the streamed weights' arrays: call once the runs that were fed them are done. */
  recycle(): void {
    for (const buffer of this.lent) {
      const free = this.pool.get(buffer.length);
      if (free) free.push(buffer);
      else this.pool.set(buffer.length, [buffer]);
    }
    this.lent.length = 0;
  }

  /** Frees the pooled arrays of streamed weights (between phases that stream none). */
  dropPool(): void {
    this.recycle();
    this.pool.clear();
  }

  /** Frees every resident weight and pooled array. */
  clear(): void {
    for (const [name, t] of this.residentTensors) if (this.onDevice.has(name)) this.device?.dispose(t);
    this.residentTensors.clear();
    this.onDevice.clear();
    this.hostCopies.clear();
    this.deviceBytes = 0;
    this.residentFeeds = new WeakMap();
    this.residentTotal = 0;
    this.pool.clear();
    this.lent.length = 0;
  }
}
