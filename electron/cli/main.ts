/**
 * `circuit` command-line entry: dispatches to one module per command. Errors from the
 * engine print as `error [code]: message` and exit 2; anything else is a bug and exits 1.
 */
import { isEngineError } from '../engine/errors.ts';
import { inspectCommand } from './commands/inspect.ts';
import { logitsCommand } from './commands/logits.ts';
import { traceCommand } from './commands/trace.ts';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  inspect: { run: inspectCommand, summary: 'describe and validate a checkpoint (and transcoders)' },
  logits: { run: logitsCommand, summary: 'run the model on a prompt and print the top next tokens' },
  trace: { run: traceCommand, summary: 'compute, prune and write the attribution graph of a prompt' },
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
    if (isEngineError(e)) {
      console.error(`error [${e.code}]: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
