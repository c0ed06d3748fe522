/**
 * Prompt tokenization for attribution, on top of `@huggingface/tokenizers` (pure JS, offline).
 *
 * As circuit-tracer does: the prompt is tokenized WITHOUT special tokens, then one BOS-like
 * token is prepended (BOS; if the tokenizer has none, pad; else eos), unless the text
 * already starts with a special token.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { MAX_CONFIG_BYTES, readSmallRegularFile } from '../arch/config.ts';
import { EngineError } from '../errors.ts';

export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (e.g. Gemma's `<bos>`). Default true, as HF. */
  addSpecialTokens?: boolean;
}

export interface PromptTokenizer {
  /** Largest token id + 1 (model vocabulary and added tokens). */
  readonly vocabSize: number;
  /** The token `encodePrompt` prepends (BOS, else pad, else eos); null when there is none. */
  readonly bosId: number | null;
  /** Its string, e.g. `<bos>`, `<|begin_of_text|>`, `<|endoftext|>`. */
  readonly bosToken: string | null;
  /** Where `bosId` came from. */
  readonly bosSource: 'bos' | 'pad' | 'eos' | 'special' | 'none';
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Ids of the special added tokens. */
  readonly specialIds: ReadonlySet<number>;
  /** The tokens attribution runs on: text without special tokens, BOS prepended. */
  encodePrompt(text: string): number[];
  encode(text: string, options?: EncodeOptions): number[];
  /** Decode a sequence (special tokens kept, no clean-up of spaces). */
  decode(ids: readonly number[]): string;
  /** The readable string of one token, e.g. ' Austin' (decoded on its own). */
  tokenToString(id: number): string;
  /** `tokenToString` of each id. */
  idsToTokens(ids: readonly number[]): string[];
  /** The vocabulary entry of a token id (e.g. '▁Austin', 'ĠAustin'). */
  idToVocabToken(id: number): string;
  tokenToId(token: string): number | undefined;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A tokenizer_config token field: a string or an AddedToken dict `{content: …}`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v['content'] === 'string') return v['content'];
  return null;
}

const BOS_NAMES = ['<bos>', '<|begin_of_text|>', '<s>', '<|startoftext|>'];
const EOS_NAMES = ['<eos>', '</s>', '<|endoftext|>', '<|end_of_text|>', '<|im_end|>'];
const PAD_NAMES = ['<pad>', '<|pad|>', '[PAD]'];

class HfPromptTokenizer implements PromptTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly bosToken: string | null;
  readonly bosSource: PromptTokenizer['bosSource'];
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly specialIds: ReadonlySet<number>;
  private readonly stringCache = new Map<number, string>();

  constructor(
    private readonly tok: Tokenizer,
    tokenizerJson: Json,
    config: Json,
    private readonly file: string,
  ) {
    const model = tokenizerJson['model'] as Json;
    const added = (tokenizerJson['added_tokens'] as Json[]) ?? [];
    let maxId = -1;
    const vocab = model['vocab'];
    if (isObject(vocab)) {
      for (const v of Object.values(vocab)) if (typeof v === 'number' && v > maxId) maxId = v;
    } else if (Array.isArray(vocab)) {
      maxId = vocab.length - 1;
    }
    const special = new Set<number>();
    for (const t of added) {
      if (typeof t['id'] === 'number') {
        maxId = Math.max(maxId, t['id']);
        if (t['special'] === true) special.add(t['id']);
      }
    }
    this.vocabSize = maxId + 1;
    this.specialIds = special;

    const idOf = (content: string | null): number | null => {
      if (content === null) return null;
      const id = tok.token_to_id(content);
      return id === undefined ? null : id;
    };
    const firstOf = (names: string[]): number | null => {
      for (const n of names) {
        const id = added.find((t) => t['content'] === n)?.['id'];
        if (typeof id === 'number') return id;
      }
      return null;
    };
    // an explicit `"bos_token": null` in tokenizer_config means "no BOS" (Qwen): use pad / eos
    const bosDisabled = Object.hasOwn(config, 'bos_token') && config['bos_token'] === null;
    const bos = bosDisabled
      ? null
      : (idOf(tokenContent(config['bos_token'])) ?? firstOf(BOS_NAMES) ?? templateBos(tokenizerJson, tok));
    this.padId = idOf(tokenContent(config['pad_token'])) ?? firstOf(PAD_NAMES);
    this.eosId = idOf(tokenContent(config['eos_token'])) ?? firstOf(EOS_NAMES);
    let chosen: number | null;
    let source: PromptTokenizer['bosSource'];
    if (bos !== null) {
      chosen = bos;
      source = 'bos';
    } else if (this.padId !== null) {
      chosen = this.padId;
      source = 'pad';
    } else if (this.eosId !== null) {
      chosen = this.eosId;
      source = 'eos';
    } else if (special.size > 0) {
      chosen = Math.min(...special);
      source = 'special';
    } else {
      chosen = null;
      source = 'none';
    }
    this.bosId = chosen;
    this.bosSource = source;
    this.bosToken = chosen === null ? null : (tok.id_to_token(chosen) ?? null);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tok.id_to_token(id) === undefined) {
      throw new EngineError('argument', `token id ${id} is not in the vocabulary (size ${this.vocabSize})`, {
        file: this.file,
      });
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  encodePrompt(text: string): number[] {
    const ids = this.encode(text, { addSpecialTokens: false });
    if (ids.length > 0 && (this.specialIds.has(ids[0]) || ids[0] === this.bosId)) return ids;
    if (this.bosId === null) {
      throw new EngineError(
        'tokenizer',
        'the tokenizer has no BOS, pad, eos or other special token to prepend',
        {
          file: this.file,
        },
      );
    }
    return [this.bosId, ...ids];
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.checkId(id);
    return this.tok.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToString(id: number): string {
    let s = this.stringCache.get(id);
    if (s === undefined) {
      s = this.decode([id]);
      this.stringCache.set(id, s);
    }
    return s;
  }

  idsToTokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.tokenToString(id));
  }

  idToVocabToken(id: number): string {
    this.checkId(id);
    return this.tok.id_to_token(id) as string;
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }
}

/** The special token a TemplateProcessing post-processor puts first (Gemma: `<bos>`). */
function templateBos(tokenizerJson: Json, tok: Tokenizer): number | null {
  const pp = tokenizerJson['post_processor'];
  const candidates: Json[] = [];
  if (isObject(pp)) {
    if (pp['type'] === 'TemplateProcessing') candidates.push(pp);
    if (pp['type'] === 'Sequence' && Array.isArray(pp['processors'])) {
      for (const p of pp['processors'])
        if (isObject(p) && p['type'] === 'TemplateProcessing') candidates.push(p);
    }
  }
  for (const p of candidates) {
    const single = p['single'];
    const first = Array.isArray(single) ? single[0] : undefined;
    if (isObject(first) && isObject(first['SpecialToken'])) {
      const content = first['SpecialToken']['id'];
      if (typeof content === 'string') {
        const id = tok.token_to_id(content);
        if (id !== undefined) return id;
      }
    }
  }
  return null;
}

/**
 * Build a PromptTokenizer from parsed tokenizer.json / tokenizer_config.json objects.
 * `file` is named in errors.
 */
export function createPromptTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown = {},
  file = 'tokenizer.json',
): PromptTokenizer {
  if (!isObject(tokenizerJson)) {
    throw new EngineError('tokenizer', 'tokenizer.json must hold a JSON object', { file });
  }
  if (!isObject(tokenizerJson['model'])) {
    throw new EngineError('tokenizer', 'tokenizer.json has no model object', { file, field: 'model' });
  }
  const tj: Json = { ...tokenizerJson };
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(k in tj)) tj[k] = null;
  if (tj['added_tokens'] === undefined || tj['added_tokens'] === null) tj['added_tokens'] = [];
  if (!Array.isArray(tj['added_tokens']) || !tj['added_tokens'].every((t) => isObject(t))) {
    throw new EngineError('tokenizer', 'added_tokens must be an array of objects', {
      file,
      field: 'added_tokens',
    });
  }
  const config: Json = isObject(tokenizerConfig) ? { ...tokenizerConfig } : {};
  // the library expects plain strings for the special-token fields
  for (const k of [
    'bos_token',
    'eos_token',
    'unk_token',
    'pad_token',
    'sep_token',
    'cls_token',
    'mask_token',
  ]) {
    if (config[k] !== undefined && config[k] !== null) {
      const c = tokenContent(config[k]);
      if (c === null) delete config[k];
      else config[k] = c;
    }
  }
  if (config['additional_special_tokens'] !== undefined) {
    const a = config['additional_special_tokens'];
    config['additional_special_tokens'] = Array.isArray(a)
      ? a.map(tokenContent).filter((x): x is string => x !== null)
      : [];
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, config);
  } catch (e) {
    throw new EngineError('tokenizer', `unsupported or malformed tokenizer: ${(e as Error).message}`, {
      file,
    });
  }
  return new HfPromptTokenizer(tok, tj, config, file);
}

/**
 * The most tokenizer.json may hold: Gemma's is ~33 MiB and the largest common ones (Gemma-3,
 * Qwen) stay under 40 MiB; JSON.parse needs several times the text in memory, so a bigger
 * file is refused before it is read. tokenizer_config.json gets MAX_CONFIG_BYTES.
 */
export const MAX_TOKENIZER_JSON_BYTES = 64 * 2 ** 20;

/**
 * Reads and parses one tokenizer file: opened non-blocking and read only when it is a regular
 * file within `maxBytes` (a FIFO or /dev/zero is refused at once, naming the file).
 */
function readJson(file: string, required: boolean, maxBytes: number): unknown {
  let text: string;
  try {
    text = readSmallRegularFile(file, maxBytes);
  } catch (e) {
    const err = e as EngineError;
    if (err.code === 'missing' && !fs.existsSync(file)) {
      if (!required) return undefined;
      throw new EngineError('tokenizer', `cannot read ${path.basename(file)}: file not found`, { file });
    }
    throw new EngineError('tokenizer', err.message, { file });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EngineError('tokenizer', `${path.basename(file)} is not valid JSON: ${(e as Error).message}`, {
      file,
    });
  }
}

/**
 * Load `tokenizer.json` (required) and `tokenizer_config.json` (optional) from `dir`
 * (a folder, or the tokenizer.json file itself).
 */
export async function loadTokenizer(dir: string): Promise<PromptTokenizer> {
  let folder = dir;
  let tokenizerFile = path.join(dir, 'tokenizer.json');
  try {
    if (fs.statSync(dir).isFile()) {
      folder = path.dirname(dir);
      tokenizerFile = dir;
    }
  } catch {
    // a missing folder is reported as a missing tokenizer.json below
  }
  const tokenizerJson = readJson(tokenizerFile, true, MAX_TOKENIZER_JSON_BYTES);
  const configFile = path.join(folder, 'tokenizer_config.json');
  const config = readJson(configFile, false, MAX_CONFIG_BYTES);
  if (config !== undefined && !isObject(config)) {
    throw new EngineError('tokenizer', 'tokenizer_config.json must hold a JSON object', { file: configFile });
  }
  return createPromptTokenizer(tokenizerJson, config ?? {}, tokenizerFile);
}

/**
 * Token id → its string, or `<id>` where there is no tokenizer or the id is beyond its
 * vocabulary (a model's vocabulary may be padded beyond the tokenizer's).
 */
export function tokenNamer(tokenizer: PromptTokenizer | null): (id: number) => string {
  return (id) => (tokenizer && id < tokenizer.vocabSize ? tokenizer.tokenToString(id) : `<${id}>`);
}
