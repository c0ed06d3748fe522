export { jobError, PoolCompute, type PoolComputeOptions } from './compute.ts';
export { BUILTIN_JOB_KINDS, deviceForProvider } from './kinds/index.ts';
export { MemoryJobQueueStore } from './memory-store.ts';
export { JobPool, type JobPoolEvents, type JobPoolOptions, type SubmitOptions } from './pool.ts';
export type * from './types.ts';
export { TERMINAL_STATES } from './types.ts';
