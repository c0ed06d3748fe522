import { defineConfig } from 'vitest/config';

/** End-to-end UI tests (e2e/*.e2e.ts): one Chromium and one `circuit serve`, run in sequence. */
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
  },
});
