/** What main.ts and the program share about a command line, without loading commander. */
import type { Command } from 'commander';

/**
 * The short commands: those a person types and waits for, each a request or a few to the server (or
 * none), then done. They run from their own bundle with a V8 code cache (main.ts); their table is
 * commands/short.ts, which must list exactly these.
 */
export const SHORT_COMMAND_NAMES = ['config', 'submit', 'jobs', 'watch', 'logs', 'cancel', 'logout', 'outputs', 'download', 'status', 'users', 'templates', 'hwinfo'] as const;

export type ShortCommandName = (typeof SHORT_COMMAND_NAMES)[number];

export function isShortCommand(name: string | undefined): name is ShortCommandName {
  return (SHORT_COMMAND_NAMES as readonly (string | undefined)[]).includes(name);
}

/** Each subcommand's registration, loaded only when needed (program.ts). */
export type CommandTable = Record<string, () => Promise<(program: Command) => void>>;

/** The first word of a command line: the program has no options of its own that take a value. */
export function commandName(argv: readonly string[] = process.argv): string | undefined {
  return argv.slice(2).find((arg) => !arg.startsWith('-'));
}
