/**
 * The `ufdl-agent` program: the subcommands of a table (commands/all.ts, or commands/short.ts in the
 * short commands' bundle) wired into commander, and every error turned into one clear line and a
 * named exit status (exit-codes.ts). `main.ts` decides which table and which build run it.
 */
import { Command, CommanderError } from 'commander';
import { oneLineUsageErrors } from './cli-error.js';
import { commandName, type CommandTable } from './command-line.js';
import { ConfigError } from './config/errors.js';
import { EXIT } from './exit-codes.js';
import { VERSION } from './version.js';
import { DirectoryCreationError } from '../make-dirs.js';

/**
 * Run the command line: a command line names one command, and only that one's module is loaded (a
 * short-lived `ufdl-agent jobs` starts faster, and the long-running `run` keeps nothing in memory that
 * it never uses); help and unknown commands load the whole table. Sets `process.exitCode`.
 */
export async function runProgram(commands: CommandTable, argv: readonly string[] = process.argv): Promise<void> {
  const program = new Command('ufdl-agent')
    .description('Worker-node agent for the UFDL Jobs API, with an embedded UFDL server')
    .version(VERSION)
    .exitOverride();

  const named = commandName(argv);
  const wanted = named !== undefined && Object.hasOwn(commands, named) ? [named] : Object.keys(commands);
  for (const register of await Promise.all(wanted.map((name) => commands[name]!()))) register(program);

  // Usage errors anywhere are one line naming the command, with exit status 64.
  const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
  for (const command of everyCommand(program)) oneLineUsageErrors(command);

  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are not errors; commander already printed the message for real ones.
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`ufdl-agent: configuration error: ${err.message}\n`);
    return EXIT.CONFIG;
  }
  if (err instanceof DirectoryCreationError) {
    process.stderr.write(`ufdl-agent: ${err.message}\n`);
    return EXIT.CANTCREAT;
  }
  const exitCode = (err as { exitCode?: unknown }).exitCode;
  process.stderr.write(`ufdl-agent: ${(err as Error)?.message ?? String(err)}\n`);
  if (typeof exitCode === 'number') return exitCode;
  if (process.env.UFDL_AGENT_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return EXIT.SOFTWARE;
}
