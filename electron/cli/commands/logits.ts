/** `circuit logits`: run a model on a prompt (or token ids) and print the top next tokens. */
import { EngineError } from '../../engine/errors.ts';
import { ForwardPass } from '../../engine/model/forward-pass.ts';
import { topNextTokens } from '../../engine/model/next-token.ts';
import { openModel } from '../../engine/model/open-model.ts';
import { loadTokenizer, type PromptTokenizer } from '../../engine/tokenizer/index.ts';
import { parseFlags, positiveIntFlag, providerFlag, requireFlag, tokenIdsFlag } from '../args.ts';

const HELP = `usage: circuit logits --model DIR (--prompt TEXT | --token-ids 1,2,3) [--top 10]
                     [--provider cpu|webgpu|cuda|auto] [--json]`;

export async function logitsCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    'token-ids': { type: 'string' },
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
  if ((flags.prompt === undefined) === (flags['token-ids'] === undefined)) {
    throw new EngineError('argument', 'give exactly one of --prompt or --token-ids', { field: 'prompt' });
  }
  if (flags.prompt !== undefined && flags.prompt.trim() === '') {
    throw new EngineError('argument', '--prompt is empty', { field: 'prompt' });
  }
  const top = positiveIntFlag(flags.top, 'top', 10);
  const provider = providerFlag(flags.provider);

  const model = openModel(modelDir);
  let tokenizer: PromptTokenizer | undefined;
  let tokenIds: number[];
  if (flags.prompt !== undefined) {
    tokenizer = await loadTokenizer(model.dir);
    tokenIds = tokenizer.encodePrompt(flags.prompt);
  } else {
    tokenIds = tokenIdsFlag(flags['token-ids']!);
    tokenizer = await loadTokenizer(model.dir).catch(() => undefined);
  }
  const fp = await ForwardPass.create(model, {
    provider,
    onWarning: (m) => console.error(`warning: ${m}`),
  });
  try {
    // Only the last position's logits: a 256k vocabulary × every position would be GBs.
    const logits = (await fp.run(tokenIds, ['logits'], { logitPositions: 'last' })).get('logits')!;
    const vocab = logits.dims[1];
    const best = topNextTokens(logits.data, 1, vocab, top);
    const tokenString = (id: number) => (tokenizer ? tokenizer.tokenToString(id) : `<${id}>`);
    const result = {
      token_ids: tokenIds,
      tokens: tokenIds.map(tokenString),
      top: best.map((b) => ({
        token_id: b.tokenId,
        token: tokenString(b.tokenId),
        logit: b.logit,
        prob: b.prob,
      })),
    };
    if (flags.json) {
      console.log(JSON.stringify(result));
    } else {
      console.log(`model     ${model.dir} (${model.config.modelType}, provider ${fp.provider})`);
      console.log(`tokens    ${result.tokens.map((t) => JSON.stringify(t)).join(' ')}`);
      console.log('next token (last position):');
      for (const r of result.top) {
        console.log(
          `  ${(r.prob * 100).toFixed(2).padStart(6)}%  ${r.logit.toFixed(4).padStart(9)}  ${JSON.stringify(r.token)}`,
        );
      }
    }
    return 0;
  } finally {
    await fp.close();
    model.close();
  }
}
