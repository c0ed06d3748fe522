export { BUILTIN_JOB_KINDS, deviceForProvider } from './kinds/index.ts';
export { MemoryJobQueueStore } from './memory-store.ts';
export { JobPool, type JobPoolEvents, type JobPoolOptions, type SubmitOptions } from './pool.ts';
export { jobError, PoolCompute, type PoolComputeOptions } from './pool-compute.ts';
export type * from './types.ts';
export { TERMINAL_STATES } from './types.ts';
