export * from './align.ts';
export * from './diff.ts';
export * from './input.ts';
export * from './types.ts';
