export type { EncodeOptions, PromptTokenizer } from './tokenizer.ts';
export { createPromptTokenizer, loadTokenizer } from './tokenizer.ts';
