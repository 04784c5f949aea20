#!/usr/bin/env node
/**
 * The `ufdl-agent` command. Each subcommand lives in `commands/<name>.ts`; this file only wires them
 * and turns errors into one clear line and a named exit status (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { oneLineUsageErrors } from './cli-error.js';
import { ConfigError } from './config/errors.js';
import { EXIT } from './exit-codes.js';
import { registerConfig } from './commands/config.js';
import { registerRun } from './commands/run.js';
import { registerServe } from './commands/serve.js';
import { registerStandalone } from './commands/standalone.js';
import { registerCancel } from './commands/cancel.js';
import { registerDownload } from './commands/download.js';
import { registerHwinfo } from './commands/hwinfo.js';
import { registerJobs } from './commands/jobs.js';
import { registerLogs } from './commands/logs.js';
import { registerOutputs } from './commands/outputs.js';
import { registerStatus } from './commands/status.js';
import { registerSubmit } from './commands/submit.js';
import { registerTemplates } from './commands/templates.js';
import { registerUsers } from './commands/users.js';
import { registerWatch } from './commands/watch.js';
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

registerRun(program);
registerServe(program);
registerStandalone(program);
registerConfig(program);
registerSubmit(program);
registerJobs(program);
registerWatch(program);
registerLogs(program);
registerCancel(program);
registerOutputs(program);
registerDownload(program);
registerStatus(program);
registerUsers(program);
registerTemplates(program);
registerHwinfo(program);

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
