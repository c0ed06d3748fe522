export * from './influence.ts';
export * from './normalize.ts';
export * from './prune.ts';
export * from './scores.ts';
export * from './threshold.ts';
