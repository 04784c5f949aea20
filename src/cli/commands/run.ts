/**
 * `ufdl-agent run`: the agent daemon, until a signal stops it (DESIGN §6). Exit status 0 after a
 * clean stop.
 */
import type { Command } from 'commander';
import { agentOptionsFrom } from '../agent-options.js';
import { startAgentFromCli } from '../agent-start.js';
import { loadConfig } from '../config/load.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { createLogger } from '../logger.js';

export function registerRun(program: Command): void {
  commonFlags(
    program
      .command('run')
      .description('Run the agent daemon: register this node, take jobs, run them, report them')
      .option('--server <url>', 'server URL (server.url)')
      .option('--user <name>', 'user to log in as (server.username)')
      .option('--password-file <file>', 'file holding the password (server.password_file)')
      .option('--work-dir <dir>', 'parent of the job directories (agent.work_dir)')
      .option('--slots <n>', 'concurrent jobs; 0 = one per GPU (agent.slots)'),
  ).action(async (flags: CommonFlags & { server?: string; user?: string; passwordFile?: string; workDir?: string; slots?: string }) => {
    const config = loadConfig({
      file: flags.config,
      flags: {
        'server.url': flags.server,
        'server.username': flags.user,
        'server.password_file': flags.passwordFile,
        'agent.work_dir': flags.workDir,
        'agent.slots': flags.slots,
      },
    });
    const log = createLogger({ name: 'ufdl-agent', level: flags.logLevel });
    const agent = await startAgentFromCli(agentOptionsFrom(config), log);
    await agent.whenStopped();
    log.info('agent stopped');
  });
}
