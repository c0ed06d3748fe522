/**
 * What a trace and an intervention both start from: the model, its transcoders (checked to fit)
 * and its tokenizer, opened together, with the key a warm worker reuses them by.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ProviderChoice } from '../runtime/providers.ts';
import { loadTokenizer, type PromptTokenizer } from '../tokenizer/index.ts';
import { loadTranscoderSet } from '../transcoders/load.ts';
import type { TranscoderSet } from '../transcoders/types.ts';
import { type OpenedModel, openModel } from './open-model.ts';
import { assertTranscodersFit } from './transcoder-fit.ts';

export interface OpenedReplacement {
  model: OpenedModel;
  set: TranscoderSet;
  /**
   * One rule everywhere: no tokenizer.json means token-id input only (null); a tokenizer.json
   * that does not load fails the open, naming the file.
   */
  tokenizer: PromptTokenizer | null;
}

/** Where and how a model is run: equal keys may share one opened model and its sessions. */
export function replacementKey(
  checkpointDir: string,
  transcoderDir: string,
  opts: { provider: ProviderChoice; cacheRoot?: string; threads?: number },
): string {
  return JSON.stringify([
    path.resolve(checkpointDir),
    path.resolve(transcoderDir),
    opts.provider,
    opts.cacheRoot ?? null,
    opts.threads ?? null,
  ]);
}

/**
 * Opens the model, its transcoders and tokenizer, then `build`s on them (sessions, compiled
 * graphs); if anything fails, what was opened is closed before the error propagates.
 */
export async function openReplacement<T>(
  checkpointDir: string,
  transcoderDir: string,
  build: (opened: OpenedReplacement) => Promise<T>,
): Promise<T> {
  const model = openModel(checkpointDir);
  let set: TranscoderSet | undefined;
  try {
    set = loadTranscoderSet(transcoderDir);
    assertTranscodersFit(model, set);
    const tokenizer = fs.existsSync(path.join(model.dir, 'tokenizer.json'))
      ? await loadTokenizer(model.dir)
      : null;
    return await build({ model, set, tokenizer });
  } catch (e) {
    set?.close();
    model.close();
    throw e;
  }
}
