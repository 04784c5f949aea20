/**
 * The short commands (command-line.ts says which), bundled on their own into
 * `dist/cli/short-commands.cjs`, which starts with a V8 code cache (main.ts, cached-bundle.ts):
 * nothing here may load the server or the agent's loop.
 */
import type { CommandTable, ShortCommandName } from '../command-line.js';
import { runProgram } from '../program.js';

export const SHORT_COMMANDS: Record<ShortCommandName, CommandTable[string]> = {
  config: async () => (await import('./config.js')).registerConfig,
  submit: async () => (await import('./submit.js')).registerSubmit,
  jobs: async () => (await import('./jobs.js')).registerJobs,
  watch: async () => (await import('./watch.js')).registerWatch,
  logs: async () => (await import('./logs.js')).registerLogs,
  cancel: async () => (await import('./cancel.js')).registerCancel,
  logout: async () => (await import('./logout.js')).registerLogout,
  outputs: async () => (await import('./outputs.js')).registerOutputs,
  download: async () => (await import('./download.js')).registerDownload,
  status: async () => (await import('./status.js')).registerStatus,
  users: async () => (await import('./users.js')).registerUsers,
  templates: async () => (await import('./templates.js')).registerTemplates,
  hwinfo: async () => (await import('./hwinfo.js')).registerHwinfo,
};

/** The entry of the short commands' bundle. */
export function runShortCommand(): Promise<void> {
  return runProgram(SHORT_COMMANDS);
}
