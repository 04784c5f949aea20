#!/usr/bin/env node
/**
 * The `ufdl-agent` command. Each subcommand lives in `commands/<name>.ts`; this file only wires them
 * and turns errors into one clear line and a named exit status (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { oneLineUsageErrors } from './cli-error.js';
import { ConfigError } from './config/errors.js';
import { EXIT } from './exit-codes.js';
import { VERSION } from './version.js';

// `ufdl-agent jobs | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  throw err;
});

const program = new Command('ufdl-agent')
  .description('Worker-node agent for the UFDL Jobs API, with an embedded UFDL server')
  .version(VERSION)
  .exitOverride();

/**
 * Every subcommand, in the order help lists them, each loaded only when needed: a command line names
 * one, and only that one's module is loaded (a short-lived `ufdl-agent jobs` starts faster, and the
 * long-running `run` keeps nothing in memory that it never uses). Help and unknown commands load all.
 */
const COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  run: async () => (await import('./commands/run.js')).registerRun,
  serve: async () => (await import('./commands/serve.js')).registerServe,
  standalone: async () => (await import('./commands/standalone.js')).registerStandalone,
  config: async () => (await import('./commands/config.js')).registerConfig,
  submit: async () => (await import('./commands/submit.js')).registerSubmit,
  jobs: async () => (await import('./commands/jobs.js')).registerJobs,
  watch: async () => (await import('./commands/watch.js')).registerWatch,
  logs: async () => (await import('./commands/logs.js')).registerLogs,
  cancel: async () => (await import('./commands/cancel.js')).registerCancel,
  logout: async () => (await import('./commands/logout.js')).registerLogout,
  outputs: async () => (await import('./commands/outputs.js')).registerOutputs,
  download: async () => (await import('./commands/download.js')).registerDownload,
  status: async () => (await import('./commands/status.js')).registerStatus,
  users: async () => (await import('./commands/users.js')).registerUsers,
  templates: async () => (await import('./commands/templates.js')).registerTemplates,
  hwinfo: async () => (await import('./commands/hwinfo.js')).registerHwinfo,
  'migrate-store': async () => (await import('./commands/migrate-store.js')).registerMigrateStore,
};

// The program has no options of its own that take a value, so the first word is the command.
const named = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const register of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) register(program);

// Usage errors anywhere are one line naming the command, with exit status 64.
const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
for (const command of everyCommand(program)) oneLineUsageErrors(command);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeFor(err);
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
  const exitCode = (err as { exitCode?: unknown }).exitCode;
  process.stderr.write(`ufdl-agent: ${(err as Error)?.message ?? String(err)}\n`);
  if (typeof exitCode === 'number') return exitCode;
  if (process.env.UFDL_AGENT_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
  return EXIT.SOFTWARE;
}
