/**
 * `circuit intervene`: set, scale or ablate transcoder features on a prompt and print how the
 * next-token predictions change (open loop: frozen attention/norms/other MLPs, matching the
 * graph; closed loop: everything downstream recomputed), optionally with a greedy continuation.
 */
import { EngineError } from '../../engine/errors.ts';
import {
  type ActivationChange,
  type FeatureIntervention,
  Intervener,
  type InterventionResult,
} from '../../engine/intervene/interventions.ts';
import { featureEdit } from '../../engine/intervene/spec.ts';
import { openModel } from '../../engine/model/open-model.ts';
import { loadTokenizer } from '../../engine/tokenizer/index.ts';
import { loadTranscoderSet } from '../../engine/transcoders/load.ts';
import { parseFlags, positiveIntFlag, providerFlag, requireFlag } from '../args.ts';

const HELP = `usage: circuit intervene --model DIR --transcoders DIR --prompt TEXT
       (--set LAYER:FEATURE:POS=VALUE | --scale LAYER:FEATURE:POS=FACTOR | --ablate LAYER:FEATURE:POS)...
       [--open-loop | --closed-loop [--freeze-attention]] [--generate N] [--top 10]
       [--provider cpu|webgpu|cuda|auto] [--json]

  --open-loop          frozen replacement model (attention, norms, other MLP outputs held):
                       direct effects, exactly the graph's edges
  --closed-loop        (default) everything downstream recomputed, transcoder activations included
  --freeze-attention   closed loop with every attention pattern held at the prompt's values
                       (norms, MLPs and transcoders still recomputed); not with --generate
  --generate N         greedy continuation of N tokens with the edit applied (closed loop)`;

const SPEC = /^(\d+):(\d+):(\d+)(?:=(.+))?$/;

export function parseIntervention(text: string, mode: FeatureIntervention['mode']): FeatureIntervention {
  const m = SPEC.exec(text.trim());
  const flag = `--${mode}`;
  if (!m || (mode === 'ablate') !== (m[4] === undefined)) {
    const form = mode === 'ablate' ? 'LAYER:FEATURE:POS' : 'LAYER:FEATURE:POS=VALUE';
    throw new EngineError('argument', `${flag} expects ${form}, got "${text}"`, { field: mode });
  }
  const value = m[4] === undefined ? undefined : Number(m[4]);
  if (value !== undefined && !Number.isFinite(value)) {
    throw new EngineError('argument', `${flag} value must be a number, got "${m[4]}"`, { field: mode });
  }
  return featureEdit({ layer: Number(m[1]), feature: Number(m[2]), position: Number(m[3]) }, mode, value);
}

export async function interveneCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    transcoders: { type: 'string' },
    prompt: { type: 'string' },
    set: { type: 'string', multiple: true },
    scale: { type: 'string', multiple: true },
    ablate: { type: 'string', multiple: true },
    'open-loop': { type: 'boolean' },
    'closed-loop': { type: 'boolean' },
    'freeze-attention': { type: 'boolean' },
    generate: { type: 'string' },
    top: { type: 'string' },
    provider: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const modelDir = requireFlag(flags.model, 'model');
  const transcoderDir = requireFlag(flags.transcoders, 'transcoders');
  const prompt = requireFlag(flags.prompt, 'prompt');
  if (flags['open-loop'] && flags['closed-loop']) {
    throw new EngineError('argument', 'give at most one of --open-loop and --closed-loop', {
      field: 'open-loop',
    });
  }
  const openLoop = flags['open-loop'] === true;
  const interventions = [
    ...((flags.set as string[] | undefined) ?? []).map((t) => parseIntervention(t, 'set')),
    ...((flags.scale as string[] | undefined) ?? []).map((t) => parseIntervention(t, 'scale')),
    ...((flags.ablate as string[] | undefined) ?? []).map((t) => parseIntervention(t, 'ablate')),
  ];
  const generate = flags.generate === undefined ? 0 : positiveIntFlag(flags.generate, 'generate', 1);
  if (openLoop && generate)
    throw new EngineError('argument', '--generate needs the closed loop', { field: 'generate' });
  const freezeAttention = flags['freeze-attention'] === true;
  if (openLoop && freezeAttention) {
    throw new EngineError(
      'argument',
      '--freeze-attention applies to the closed loop (the open loop holds every attention pattern already)',
      { field: 'freeze-attention' },
    );
  }
  if (freezeAttention && generate) {
    throw new EngineError(
      'argument',
      '--freeze-attention cannot be combined with --generate: the generated positions have no original attention pattern',
      { field: 'freeze-attention' },
    );
  }
  const top = positiveIntFlag(flags.top, 'top', 10);
  const provider = providerFlag(flags.provider);

  const model = openModel(modelDir);
  const set = loadTranscoderSet(transcoderDir);
  let intervener: Intervener | undefined;
  try {
    const tokenizer = await loadTokenizer(model.dir);
    const tokenIds = tokenizer.encodePrompt(prompt);
    intervener = await Intervener.create(model, set, {
      provider,
      onWarning: (m) => console.error(`warning: ${m}`),
    });
    const result: InterventionResult = openLoop
      ? await intervener.openLoop(tokenIds, interventions, { top })
      : await intervener.closedLoopIntervention(tokenIds, interventions, { top, generate, freezeAttention });
    const tok = (id: number) => tokenizer.tokenToString(id);
    if (flags.json) {
      console.log(
        JSON.stringify({
          loop: result.loop,
          freeze_attention: freezeAttention,
          token_ids: tokenIds,
          interventions,
          before: result.before.map((p) => ({
            token_id: p.tokenId,
            token: tok(p.tokenId),
            logit: p.logit,
            prob: p.prob,
          })),
          after: result.after.map((p) => ({
            token_id: p.tokenId,
            token: tok(p.tokenId),
            logit: p.logit,
            prob: p.prob,
          })),
          changes: result.changes.map((c) => ({ token: tok(c.tokenId), ...c })),
          activation_changes: result.activationChanges,
          input_changes: result.inputChanges ?? [],
          // Demeaned pre-softcap logits (what the graph's logit targets measure).
          target_logit_changes: (result.targetLogitChanges ?? []).map((c) => ({
            token: tok(c.tokenId),
            ...c,
          })),
          generated: result.generated.map(tok),
        }),
      );
    } else {
      console.log(
        `${result.loop} loop${freezeAttention ? ' (attention frozen)' : ''}, ${interventions.length} intervention(s) on ${JSON.stringify(prompt)}`,
      );
      console.log('token                 before      after     change');
      for (const c of result.changes.slice(0, top)) {
        const d = (c.probAfter - c.probBefore) * 100;
        console.log(
          `${JSON.stringify(tok(c.tokenId)).padEnd(18)} ${(c.probBefore * 100).toFixed(2).padStart(8)}% ${(c.probAfter * 100).toFixed(2).padStart(8)}% ${(d >= 0 ? '+' : '') + d.toFixed(2)}`,
        );
      }
      const list = (title: string, changes: readonly ActivationChange[]) => {
        if (!changes.length) return;
        console.log(`${title} (layer:feature:pos before → after):`);
        for (const a of changes.slice(0, 10)) {
          console.log(
            `  ${a.layer}:${a.feature}:${a.position}  ${a.before.toFixed(3)} → ${a.after.toFixed(3)}`,
          );
        }
      };
      list('largest activation changes', result.activationChanges);
      list('largest direct input (pre-activation) changes, activations frozen', result.inputChanges ?? []);
      if (result.generated.length)
        console.log(`continuation: ${JSON.stringify(result.generated.map(tok).join(''))}`);
    }
    return 0;
  } finally {
    await intervener?.close();
    set.close();
    model.close();
  }
}
