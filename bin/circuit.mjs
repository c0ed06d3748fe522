#!/usr/bin/env node
// The `circuit` command. Runs the TypeScript sources directly through tsx's loader, so the
// repository works after `npm ci` with no build step.
import { runWithHugePages } from './huge-pages.mjs';

if (!runWithHugePages()) {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../electron/cli/main.ts');
  process.exitCode = await main(process.argv.slice(2));
}
