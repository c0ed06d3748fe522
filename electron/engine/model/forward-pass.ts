/**
 * Runs the forward pass: token ids in, the requested hooks out as float32 arrays with their
 * dims. The prompt's embedding rows are read from the checkpoint, the layer segments run in
 * order (weights fed per segment, see forward-graph.ts), and the logits come from the
 * streamed unembedding (logit-head.ts).
 */
import { forwardInputs } from '../arch/transformer.ts';
import { EngineError } from '../errors.ts';
import { resolveProvider } from '../runtime/auto-provider.ts';
import { type DeviceMemory, deviceResidentBudget, queryDeviceMemory } from '../runtime/device-memory.ts';
import {
  DeviceBufferLimitError,
  type DeviceTensors,
  deviceMaxBufferBytes,
  deviceTensors,
} from '../runtime/device-tensors.ts';
import type { ProviderName } from '../runtime/providers.ts';
import { createSession, ort, releaseSession, runSession, type SessionOptions } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { type CompiledForward, compileForward, defaultResidentWeightBytes } from './forward-graph.ts';
import { LogitHead } from './logit-head.ts';
import type { OpenedModel } from './open-model.ts';
import { float32Bytes, WeightFeeder } from './weight-feeder.ts';
import { WEIGHT_INPUT_PREFIX } from './weight-source.ts';

export interface HookValue {
  dims: number[];
  data: Float32Array;
}

export interface ForwardPassOptions extends SessionOptions {
  transcoders?: TranscoderSet;
  /** Shared with other graphs of the same model (the attribution's linear model). */
  feeder?: WeightFeeder;
  /**
   * Decoded float32 weights kept resident at most (see forward-graph.ts): host memory on the
   * CPU (default an eighth of the machine's), device memory on a GPU (default a share of its
   * free memory, runtime/device-memory.ts).
   */
  residentWeightBytes?: number;
  /** Where tensors that stay the same across runs go (default: the provider's device, see device-tensors.ts). */
  device?: (provider: ProviderName) => DeviceTensors;
}

export interface ForwardRunOptions {
  /** Positions whose logits are computed: every position (default) or the last one only. */
  logitPositions?: 'all' | 'last';
}

export class ForwardPass {
  private constructor(
    readonly model: OpenedModel,
    readonly compiled: CompiledForward,
    private readonly sessions: ort.InferenceSession[],
    readonly head: LogitHead,
    readonly feeder: WeightFeeder,
    readonly provider: ProviderName,
    /** Where tensors that stay the same across runs are kept (the GPU's memory on a GPU). */
    readonly device: DeviceTensors,
    /** The GPU's memory when it could be known (device-memory.ts), else null; null on the CPU. */
    readonly deviceMemory: DeviceMemory | null,
  ) {}

  static async create(model: OpenedModel, opts: ForwardPassOptions = {}): Promise<ForwardPass> {
    const feeder = opts.feeder ?? new WeightFeeder();
    // The provider first: on a GPU the weights stay resident when they fit its memory, not the host's.
    const provider = await resolveProvider(opts.provider, opts.onWarning);
    const device = (opts.device ?? deviceTensors)(provider);
    const maxBuffer = device.onDevice ? deviceMaxBufferBytes() : Number.POSITIVE_INFINITY;
    try {
      return await ForwardPass.build(model, opts, feeder, provider, device, maxBuffer);
    } catch (e) {
      if (!(e instanceof DeviceBufferLimitError)) throw e;
      let refused = e;
      // The complete graph feeds the embedding whole: past the GPU's largest buffer it stays on
      // the host instead (the prompt's rows read, the logits on the CPU) and the rest is tried again.
      const names = model.weightNames;
      const vocabBytes = float32Bytes(model.expectedShapes.get(names.lmHead ?? names.embed) ?? []);
      if (vocabBytes > e.limitBytes && e.limitBytes < maxBuffer) {
        const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
        opts.onWarning?.(
          `the embedding (${gb(vocabBytes)}) is larger than this GPU's largest buffer (${gb(e.limitBytes)}): it stays on the host, the logits are computed on the CPU`,
        );
        const fresh = (opts.device ?? deviceTensors)(provider); // the first was released
        try {
          return await ForwardPass.build(model, opts, feeder, provider, fresh, e.limitBytes);
        } catch (again) {
          if (!(again instanceof DeviceBufferLimitError)) throw again;
          refused = again;
        }
      }
      throw new EngineError(
        'resources',
        `${refused.message}: a model weight that big cannot be a ${provider} input; trace on the CPU (--provider cpu)`,
      );
    }
  }

  /** The forward for one plan: the embedding in the complete graph only if it fits `maxBuffer`. */
  private static async build(
    model: OpenedModel,
    opts: ForwardPassOptions,
    feeder: WeightFeeder,
    provider: ProviderName,
    device: DeviceTensors,
    maxBuffer: number,
  ): Promise<ForwardPass> {
    const memory = device.onDevice ? queryDeviceMemory(provider) : null;
    const hostBudget = defaultResidentWeightBytes();
    const residentWeightBytes =
      opts.residentWeightBytes ?? (device.onDevice ? deviceResidentBudget(memory) : hostBudget);
    const compiled = compileForward(model, feeder, {
      transcoders: opts.transcoders,
      residentWeightBytes,
      maxHeadBytes: maxBuffer,
    });
    // One session per layer when streamed: no arena each (each would keep its own peak).
    const arena = { cpuMemArena: !compiled.streamed };
    const sessionOpts = { ...opts, ...arena, provider };
    const sessions: ort.InferenceSession[] = [];
    try {
      for (const seg of compiled.segments)
        sessions.push((await createSession(seg.graph, sessionOpts)).session);
      feeder.useDevice(device);
      for (const s of sessions) await feeder.ready(s.inputNames);
      const names = model.weightNames;
      const head = await LogitHead.create(
        model.tensors,
        names.lmHead ?? names.embed,
        model.config.finalSoftcap,
        {
          ...sessionOpts,
          // A few rows against the unembedding: on a GPU provider each pass would copy the
          // whole unembedding to the device, so it runs on the CPU.
          provider: 'cpu',
          // What the layers leave of the host's budget (the unembedding is kept only if it fits
          // too; on a device the layers hold none of it); the complete graph already holds it decoded.
          residentBytes: device.onDevice
            ? hostBudget
            : compiled.streamed
              ? 0
              : residentWeightBytes - compiled.layerWeightBytes,
          residentValues: compiled.headInGraph
            ? () => feeder.residentValues(`${WEIGHT_INPUT_PREFIX}${names.lmHead ?? names.embed}`)
            : undefined,
        },
      );
      return new ForwardPass(model, compiled, sessions, head, feeder, provider, device, memory);
    } catch (e) {
      await Promise.all(sessions.map((s) => releaseSession(s)));
      feeder.clear();
      await device.release();
      throw e;
    }
  }

  get outputs(): readonly string[] {
    return this.compiled.outputs;
  }

  validateTokenIds(tokenIds: readonly number[]): void {
    const { vocabSize, maxPositions, family } = this.model.config;
    if (tokenIds.length === 0) throw new EngineError('argument', 'no tokens to run', { field: 'token_ids' });
    if (tokenIds.length > maxPositions) {
      const field = family === 'gpt2' ? 'n_positions' : 'max_position_embeddings';
      throw new EngineError(
        'argument',
        `${tokenIds.length} tokens exceed the model's context length of ${maxPositions} positions ` +
          `(config.json ${field})`,
        { field: 'token_ids' },
      );
    }
    const bad = tokenIds.find((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
    if (bad !== undefined) {
      throw new EngineError('argument', `token id ${bad} is outside the vocabulary [0, ${vocabSize})`, {
        field: 'token_ids',
      });
    }
  }

  /** Runs the model on one sequence and returns the named hooks (default: logits). */
  async run(
    tokenIds: readonly number[],
    hooks: readonly string[] = ['logits'],
    opts: ForwardRunOptions = {},
  ): Promise<Map<string, HookValue>> {
    this.validateTokenIds(tokenIds);
    const unknown = hooks.filter((h) => !this.compiled.outputs.includes(h));
    if (unknown.length) {
      throw new EngineError('argument', `the forward graph has no hook(s) ${unknown.join(', ')}`, {
        field: 'hooks',
      });
    }
    const T = tokenIds.length;
    const d = this.model.config.hiddenSize;
    const wanted = new Set(hooks);
    const needLogits = wanted.has('logits') || wanted.has('logits_pre_softcap');
    if (this.compiled.headInGraph) return this.runWhole(tokenIds, wanted, opts);
    const out = new Map<string, HookValue>();
    const embed = this.model.tensors.readRowsFloat32(this.model.weightNames.embed, tokenIds);
    let resid: ort.Tensor = new ort.Tensor('float32', embed, [T, d]);
    let unembedIn: Float32Array | undefined;
    const { segments } = this.compiled;
    for (const [i, seg] of segments.entries()) {
      const session = this.sessions[i];
      const last = i === segments.length - 1;
      const carry = last ? 'unembed.hook_in' : `blocks.${seg.to - 1}.hook_resid_post`;
      const fetch = seg.outputs.filter((h) => wanted.has(h));
      if ((!last || needLogits) && !fetch.includes(carry)) fetch.push(carry);
      if (!fetch.length) continue;
      const feeds = { ...this.feeder.feeds(session.inputNames) };
      feeds[seg.from === 0 ? forwardInputs.tokenEmbeddings : forwardInputs.residIn] = resid;
      const result = await runSession(session, feeds, fetch).finally(() => this.feeder.recycle());
      for (const h of fetch) {
        const t = result[h];
        if (wanted.has(h)) out.set(h, { dims: [...t.dims], data: t.data as Float32Array });
      }
      if (!last) resid = result[carry];
      else if (needLogits) unembedIn = result[carry].data as Float32Array;
    }
    if (needLogits && unembedIn) {
      const rows = opts.logitPositions === 'last' ? unembedIn.subarray((T - 1) * d, T * d) : unembedIn;
      const n = rows.length / d;
      const pre = await this.head.logitsPre(rows, n);
      const V = this.head.vocab;
      if (wanted.has('logits_pre_softcap')) out.set('logits_pre_softcap', { dims: [n, V], data: pre });
      if (wanted.has('logits')) out.set('logits', { dims: [n, V], data: this.head.applySoftcap(pre) });
    }
    if (wanted.has('unembed.mean_row')) {
      out.set('unembed.mean_row', { dims: [d], data: await this.head.meanRow() });
    }
    return out;
  }

  /** The complete model as one graph (headInGraph): input_ids in, every hook out. */
  private async runWhole(
    tokenIds: readonly number[],
    wanted: Set<string>,
    opts: ForwardRunOptions,
  ): Promise<Map<string, HookValue>> {
    const session = this.sessions[0];
    const out = new Map<string, HookValue>();
    const T = tokenIds.length;
    const feeds = {
      ...this.feeder.feeds(session.inputNames),
      [forwardInputs.ids]: new ort.Tensor(
        'int64',
        BigInt64Array.from(tokenIds, (t) => BigInt(t)),
        [T],
      ),
    };
    const result = await runSession(session, feeds, [...wanted]);
    for (const h of wanted) {
      const t = result[h];
      let data = t.data as Float32Array;
      let dims = [...t.dims];
      if ((h === 'logits' || h === 'logits_pre_softcap') && opts.logitPositions === 'last') {
        const V = dims[1];
        data = data.subarray((T - 1) * V, T * V);
        dims = [1, V];
      }
      out.set(h, { dims, data });
    }
    return out;
  }

  /** Releases the sessions and the weights kept on a device (host-resident weights stay with the feeder). */
  async close(): Promise<void> {
    await Promise.all([...this.sessions.map((s) => releaseSession(s)), this.head.close()]);
    if (this.device.onDevice) this.feeder.clear();
    await this.device.release();
  }
}
