export { BUILTIN_JOB_KINDS, deviceForProvider } from './kinds/index.ts';
export { PoolCompute, type PoolComputeOptions } from './pool-compute.ts';
export { jobError, type RunnerOptions, type RunOptions, type RunOutput, WorkerRunner } from './runner.ts';
export type * from './types.ts';
