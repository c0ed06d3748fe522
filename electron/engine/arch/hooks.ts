/** Hook points (names without `blocks.{l}.`) a transcoder may read from or write to. */
export const TRANSCODER_READ_HOOKS = [
  'hook_resid_pre',
  'hook_resid_mid',
  'ln2.hook_normalized',
  'mlp.hook_in',
] as const;
export const TRANSCODER_WRITE_HOOKS = ['mlp.hook_out', 'hook_mlp_out'] as const;
export const TRANSCODER_HOOKS: readonly string[] = [...TRANSCODER_READ_HOOKS, ...TRANSCODER_WRITE_HOOKS];
