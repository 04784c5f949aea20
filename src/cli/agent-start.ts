/**
 * Starting the agent from a command (`run`, `standalone`): the start-up failures a user causes become
 * one line and a named exit status (exit-codes.ts) instead of "internal error" with a stack trace.
 */
import type { Logger } from 'pino';
import type { Agent, AgentOptions } from '../agent/index.js';
import { JournalLockedError } from '../agent/journal/errors.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';

export async function startAgentFromCli(options: AgentOptions, log: Logger): Promise<Agent> {
  // Loaded here, not at start-up, so that other subcommands do not pay for it.
  const { startAgent } = await import('../agent/index.js');
  try {
    return await startAgent(options, log);
  } catch (err) {
    if (err instanceof JournalLockedError) throw new CliError(EXIT.JOURNAL_IN_USE, err.message);
    throw err;
  }
}
