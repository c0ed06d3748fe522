export type { EncodeOptions, PromptTokenizer } from './tokenizer.ts';
export { createPromptTokenizer, loadTokenizer, tokenNamer } from './tokenizer.ts';
