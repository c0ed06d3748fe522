/**
 * `circuit` command-line entry: dispatches to one module per command. Errors from the
 * engine, the store and the API print as `error [code]: message` and exit 2; anything else
 * is a bug and exits 1.
 */
import { isApiError } from '../api/errors.ts';
import { isEngineError } from '../engine/errors.ts';
import { isStoreError } from '../store/errors.ts';
import { dashboardsCommand } from './commands/dashboards.ts';
import { diffCommand } from './commands/diff.ts';
import { inspectCommand } from './commands/inspect.ts';
import { interveneCommand } from './commands/intervene.ts';
import { libraryCommand } from './commands/library.ts';
import { logitsCommand } from './commands/logits.ts';
import { serveCommand } from './commands/serve.ts';
import { traceCommand } from './commands/trace.ts';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  dashboards: { run: dashboardsCommand, summary: 'compute (or import) feature dashboards over a corpus' },
  diff: {
    run: diffCommand,
    summary: 'compare two graph JSON files: nodes and edges only in A, only in B, changed',
  },
  intervene: {
    run: interveneCommand,
    summary: 'set, scale or ablate features and compare next-token predictions',
  },
  inspect: { run: inspectCommand, summary: 'describe and validate a checkpoint (and transcoders)' },
  logits: { run: logitsCommand, summary: 'run the model on a prompt and print the top next tokens' },
  trace: { run: traceCommand, summary: 'compute, prune and write the attribution graph of a prompt' },
  library: { run: libraryCommand, summary: 'list and show the traces stored in the library' },
  serve: { run: serveCommand, summary: 'serve the API (WebSocket) and the built UI over HTTP' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: circuit <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun \`circuit <command> --help\` for its flags.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${usage()}`);
    return 1;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (isEngineError(e) || isStoreError(e) || isApiError(e)) {
      console.error(`error [${e.code}]: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
