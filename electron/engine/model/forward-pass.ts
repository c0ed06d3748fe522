/**
 * Runs a compiled forward graph: token ids in, the requested hooks out as float32 arrays
 * with their dims.
 */
import { EngineError } from '../errors.ts';
import type { ProviderName } from '../runtime/providers.ts';
import { createSession, ort, type SessionOptions } from '../runtime/session.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { type CompiledForward, compileForward } from './forward-graph.ts';
import type { OpenedModel } from './open-model.ts';

export interface HookValue {
  dims: number[];
  data: Float32Array;
}

export interface ForwardPassOptions extends SessionOptions {
  cacheRoot?: string;
  transcoders?: TranscoderSet;
}

export class ForwardPass {
  private constructor(
    readonly model: OpenedModel,
    readonly compiled: CompiledForward,
    private readonly session: ort.InferenceSession,
    readonly provider: ProviderName,
  ) {}

  static async create(model: OpenedModel, opts: ForwardPassOptions = {}): Promise<ForwardPass> {
    const compiled = compileForward(model, { cacheRoot: opts.cacheRoot, transcoders: opts.transcoders });
    const { session, provider } = await createSession(compiled.modelPath, opts);
    return new ForwardPass(model, compiled, session, provider);
  }

  get outputs(): readonly string[] {
    return this.compiled.outputs;
  }

  validateTokenIds(tokenIds: readonly number[]): void {
    const { vocabSize, maxPositions, family } = this.model.config;
    if (tokenIds.length === 0) throw new EngineError('argument', 'no tokens to run', { field: 'token_ids' });
    if (family === 'gpt2' && tokenIds.length > maxPositions) {
      throw new EngineError(
        'argument',
        `${tokenIds.length} tokens exceed the model's ${maxPositions} positions`,
        {
          field: 'token_ids',
        },
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
  ): Promise<Map<string, HookValue>> {
    this.validateTokenIds(tokenIds);
    const unknown = hooks.filter((h) => !this.compiled.outputs.includes(h));
    if (unknown.length) {
      throw new EngineError('argument', `the forward graph has no hook(s) ${unknown.join(', ')}`, {
        field: 'hooks',
      });
    }
    const ids = new ort.Tensor('int64', BigInt64Array.from(tokenIds.map((t) => BigInt(t))), [
      tokenIds.length,
    ]);
    const result = await this.session.run({ input_ids: ids }, [...hooks]);
    const out = new Map<string, HookValue>();
    for (const h of hooks) {
      const t = result[h];
      out.set(h, { dims: [...t.dims], data: t.data as Float32Array });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
