/**
 * Job kind `intervene`: set, scale or ablate features of a traced prompt (open or closed
 * loop) and report how the predictions and the other features moved. Params: InterveneJobParams
 * (the engine's InterventionRequest and optionally cacheRoot).
 *
 * Result: the InterventionOutcome (JSON, small: top tokens and the largest feature changes).
 * The worker keeps the last model's Intervener for the next intervention on it.
 */

import {
  closeIntervener,
  type InterventionRequest,
  type LoadedIntervener,
  runInterventionReusing,
} from '../../engine/intervene/intervention-run.ts';
import { providerChoice } from '../../engine/runtime/providers.ts';
import type { JobContext, JobHandler, JobOutput, JsonValue } from '../types.ts';
import { isObject, objectParams, paramError } from './params.ts';

export interface InterveneJobParams extends InterventionRequest {
  cacheRoot?: string;
}

/** The params' shape; the spec was checked against the API schema before it was queued, the edits are the Intervener's to check. */
function interveneJobParams(raw: JsonValue): InterveneJobParams {
  const v = objectParams(raw, ['checkpointDir', 'transcoderDir'], ['cacheRoot']);
  if (!Array.isArray(v.tokenIds) || v.tokenIds.length < 2)
    throw paramError('tokenIds', 'a list holding BOS and at least one token');
  if (!isObject(v.spec) || !Array.isArray(v.spec.edits)) throw paramError('spec', 'an object with edits');
  if (v.trackTokens !== undefined && !Array.isArray(v.trackTokens)) throw paramError('trackTokens', 'a list');
  return { ...(v as unknown as InterveneJobParams), provider: providerChoice(v.provider) };
}

let cached: LoadedIntervener | null = null;

const handler: JobHandler = {
  async run(raw: JsonValue, ctx: JobContext): Promise<JobOutput> {
    const p = interveneJobParams(raw);
    const out = await runInterventionReusing(
      cached,
      (l) => {
        cached = l;
      },
      p,
      { cacheRoot: p.cacheRoot, threads: ctx.threads, onWarning: ctx.log },
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
