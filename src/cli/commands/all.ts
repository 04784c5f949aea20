/** Every subcommand, in the order help lists them: the long-running ones, then the short ones. */
import type { CommandTable } from '../command-line.js';
import { runProgram } from '../program.js';
import { SHORT_COMMANDS } from './short.js';

export const ALL_COMMANDS: CommandTable = {
  run: async () => (await import('./run.js')).registerRun,
  serve: async () => (await import('./serve.js')).registerServe,
  standalone: async () => (await import('./standalone.js')).registerStandalone,
  ...SHORT_COMMANDS,
  'migrate-store': async () => (await import('./migrate-store.js')).registerMigrateStore,
};

/** The entry of the chunked build: any command line (main.ts). */
export function runAnyCommand(): Promise<void> {
  return runProgram(ALL_COMMANDS);
}
