/**
 * `models.tokens`: what the trace form needs to pick attribution targets — a search over the
 * model's vocabulary and the top next tokens of a prompt — and the check of a trace's targets
 * against the model (inline vectors of exactly d_model numbers) before it is queued.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseTargetSpecs } from '../engine/attribution/target-json.ts';
import { ForwardPass } from '../engine/model/forward-pass.ts';
import { openModel } from '../engine/model/open-model.ts';
import { loadTokenizer, type PromptTokenizer } from '../engine/tokenizer/index.ts';
import type { ModelRecord, TraceTarget } from '../store/types.ts';
import type { ModelTokens } from './contract.ts';
import { ApiError } from './errors.ts';

/** Longest prompt whose next tokens are computed here (a forward pass on the calling thread). */
const MAX_TOP_PROMPT_TOKENS = 512;

interface Vocab {
  dir: string;
  tokenizer: PromptTokenizer;
  /** Every token's readable string, by id (decoded once per model). */
  strings: string[];
}

export class ModelTokenLookup {
  private vocab: Vocab | null = null;

  private async load(dir: string): Promise<Vocab> {
    if (this.vocab?.dir === dir) return this.vocab;
    if (!fs.existsSync(path.join(dir, 'tokenizer.json')))
      throw new ApiError('invalid_params', 'the model has no tokenizer.json: its tokens have no strings', {
        field: 'modelId',
      });
    const tokenizer = await loadTokenizer(dir);
    const strings = Array.from({ length: tokenizer.vocabSize }, (_, id) => {
      try {
        return tokenizer.tokenToString(id);
      } catch {
        return ''; // a hole in the vocabulary
      }
    });
    this.vocab = { dir, tokenizer, strings };
    return this.vocab;
  }

  async lookup(
    model: ModelRecord,
    p: { query?: string; prompt?: string; limit?: number },
  ): Promise<ModelTokens> {
    const limit = p.limit ?? 20;
    const v = await this.load(model.checkpointDir);
    const matches: ModelTokens['matches'] = [];
    const q = p.query?.toLowerCase() ?? '';
    if (q.trim() !== '') {
      const found: number[] = [];
      v.strings.forEach((s, id) => {
        if (s !== '' && !v.tokenizer.specialIds.has(id) && s.toLowerCase().includes(q)) found.push(id);
      });
      // Exact matches first (with or without a leading space), then the shortest.
      const rank = (id: number) => {
        const s = v.strings[id].toLowerCase();
        return s === q || s.trim() === q.trim() ? 0 : 1;
      };
      found.sort((a, b) => rank(a) - rank(b) || v.strings[a].length - v.strings[b].length || a - b);
      for (const id of found.slice(0, limit)) matches.push({ id, token: v.strings[id] });
    }
    let top: ModelTokens['top'] = null;
    if (p.prompt !== undefined && p.prompt.trim() !== '') {
      const ids = v.tokenizer.encodePrompt(p.prompt);
      if (ids.length > MAX_TOP_PROMPT_TOKENS)
        throw new ApiError('invalid_params', `the prompt is over ${MAX_TOP_PROMPT_TOKENS} tokens`, {
          field: 'prompt',
        });
      const opened = openModel(model.checkpointDir);
      let fp: ForwardPass | undefined;
      try {
        fp = await ForwardPass.create(opened);
        const logits = (await fp.run(ids, ['logits'], { logitPositions: 'last' })).get('logits')!.data;
        let max = Number.NEGATIVE_INFINITY;
        for (const x of logits) if (x > max) max = x;
        let sum = 0;
        for (const x of logits) sum += Math.exp(x - max);
        const order = Array.from({ length: logits.length }, (_, i) => i)
          .sort((a, b) => logits[b] - logits[a] || a - b)
          .slice(0, limit);
        top = order.map((id) => ({
          id,
          token: v.strings[id] ?? `<${id}>`,
          prob: Math.exp(logits[id] - max) / sum,
        }));
      } finally {
        await fp?.close();
        opened.close();
      }
    }
    return { matches, top };
  }
}

/**
 * Checks a trace's targets against its model before queueing: their form (as the schema) and
 * inline vectors of exactly the model's d_model. Token strings are checked when the trace runs.
 */
export function checkTraceTargets(targets: TraceTarget[] | null | undefined, model: ModelRecord): void {
  if (!targets) return;
  parseTargetSpecs(targets, { field: 'settings.targets' });
  const d = model.validation.model?.hiddenSize;
  if (typeof d !== 'number') return;
  targets.forEach((t, k) => {
    if ('vector' in t && t.vector.length !== d)
      throw new ApiError(
        'invalid_params',
        `invalid params: target ${k} (${JSON.stringify(t.label)}): vector has ${t.vector.length} numbers, the model's d_model is ${d}`,
        { field: `settings.targets[${k}]` },
      );
  });
}
