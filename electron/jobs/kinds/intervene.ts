/**
 * Job kind `intervene`: set, scale or ablate features of a traced prompt (open or closed
 * loop) and report how the predictions and the other features moved. Params (JSON): model,
 * transcoders, tokenIds, provider, spec (loop, edits, freezeAttention, generate, top), and
 * optionally trackTokens (the trace's logit targets) and cacheRoot.
 *
 * Result: the InterventionOutcome (JSON, small: top tokens and the largest feature changes).
 * The worker keeps the last model's Intervener for the next intervention on it.
 */

import { EngineError } from '../../engine/errors.ts';
import {
  closeIntervener,
  type LoadedIntervener,
  runInterventionReusing,
} from '../../engine/intervene/intervention-run.ts';
import type { InterventionSpec } from '../../engine/intervene/spec.ts';
import { providerChoice } from '../../engine/runtime/providers.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { asParams, optInts, optStr, str } from './params.ts';

let cached: LoadedIntervener | null = null;

function specOf(v: JsonValue | undefined): InterventionSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Array.isArray(v.edits)) {
    throw new EngineError('argument', 'spec must be an object with edits', { field: 'spec' });
  }
  // The service validated the spec against the API schema before queueing it.
  return v as unknown as InterventionSpec;
}

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = asParams(raw);
    const tokenIds = optInts(p, 'tokenIds');
    if (!tokenIds || tokenIds.length < 2)
      throw new EngineError('argument', 'tokenIds must hold BOS and at least one token', {
        field: 'tokenIds',
      });
    const out = await runInterventionReusing(
      cached,
      (l) => {
        cached = l;
      },
      {
        checkpointDir: str(p, 'model'),
        transcoderDir: str(p, 'transcoders'),
        provider: providerChoice(p.provider ?? 'cpu'),
        tokenIds,
        spec: specOf(p.spec),
        trackTokens: optInts(p, 'trackTokens'),
      },
      { cacheRoot: optStr(p, 'cacheRoot'), threads: ctx.threads, onWarning: ctx.log },
      {
        signal: ctx.signal,
        onProgress: (x) => ctx.progress({ phase: x.phase, done: x.done, total: x.total }),
      },
    );
    return { result: out as unknown as JsonValue };
  },
  async dispose() {
    const c = cached;
    cached = null;
    await closeIntervener(c);
  },
};

export default handler;
