/** Whether a transcoder set belongs to an opened model (widths, layer count, hooks). */
import { TRANSCODER_HOOKS } from '../arch/hooks.ts';
import { EngineError } from '../errors.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { transcoderModelProblems } from '../transcoders/validate.ts';
import type { OpenedModel } from './open-model.ts';

export function transcoderProblemsFor(model: OpenedModel, set: TranscoderSet): EngineError[] {
  const c = model.config;
  return transcoderModelProblems(set, {
    nLayers: c.nLayers,
    hiddenSize: c.hiddenSize,
    family: c.family,
    supportedHooks: TRANSCODER_HOOKS,
  });
}

/** Throws the first problem (with a count of the others) as a 'mismatch' error. */
export function assertTranscodersFit(model: OpenedModel, set: TranscoderSet): void {
  const problems = transcoderProblemsFor(model, set);
  if (!problems.length) return;
  const p = problems[0];
  const more =
    problems.length > 1 ? ` (and ${problems.length - 1} more problem(s); run circuit inspect)` : '';
  throw new EngineError('mismatch', `the transcoders do not belong to this model: ${p.message}${more}`, {
    file: p.file,
    tensor: p.tensor,
    field: p.field,
  });
}
