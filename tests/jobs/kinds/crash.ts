/**
 * Test-only job kind `crash`: params {how: 'throw' | 'uncaught' | 'exit' | 'oom' | 'reject'}.
 * 'throw' fails the job normally; the others kill the worker thread in different ways.
 */
import type { JobContext, JobHandler, JsonValue } from '../../../electron/jobs/types.ts';

const handler: JobHandler = {
  async run(raw: JsonValue, _ctx: JobContext) {
    const { how } = raw as { how: string };
    switch (how) {
      case 'throw':
        throw new Error('deliberate failure');
      case 'uncaught':
        setTimeout(() => {
          throw new Error('deliberate uncaught exception');
        }, 0);
        break;
      case 'reject':
        void Promise.reject(new Error('deliberate unhandled rejection'));
        break;
      case 'exit':
        process.exit(7);
        break;
      case 'oom': {
        const hog: number[][] = [];
        for (;;) hog.push(new Array(1 << 20).fill(Math.random())); // 8 MB each
      }
    }
    await new Promise((r) => setTimeout(r, 10_000));
    return { result: 'unreachable' };
  },
};

export default handler;
