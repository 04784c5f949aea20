/**
 * `ufdl-agent run`: the agent daemon, until a signal stops it (docs/OPERATIONS.md, "Signals"). Exit
 * status 0 after a clean stop. Under systemd it says when it is ready and what it does
 * (src/systemd/); SIGHUP re-reads the configuration and the hardware (`reload.ts`).
 */
import type { Command } from 'commander';
import { agentOptionsFrom } from '../agent-options.js';
import { startAgentFromCli } from '../agent-start.js';
import { CliError } from '../cli-error.js';
import { EXIT } from '../exit-codes.js';
import { loadConfig } from '../config/load.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { createLogger, logLevelFrom } from '../logger.js';
import { onAgentReloadSignal } from '../reload.js';

export function registerRun(program: Command): void {
  commonFlags(
    program
      .command('run')
      .description('Run the agent daemon: register this node, take jobs, run them, report them')
      .option('--server <url>', 'server URL, or several comma-separated, in order of preference (server.url)')
      .option('--user <name>', 'user to log in as (server.username)')
      .option('--password-file <file>', 'file holding the password (server.password_file)')
      .option('--work-dir <dir>', 'parent of the job directories (agent.work_dir)')
      .option('--slots <n>', 'concurrent jobs; 0 = one per GPU (agent.slots)'),
  ).action(async (flags: CommonFlags & { server?: string; user?: string; passwordFile?: string; workDir?: string; slots?: string }) => {
    const load = () =>
      loadConfig({
        file: flags.config,
        flags: {
          'server.url': flags.server,
          'server.username': flags.user,
          'server.password_file': flags.passwordFile,
          'agent.work_dir': flags.workDir,
          'agent.slots': flags.slots,
        },
      });
    const config = load();
    // Loaded here, not at start-up, so that other subcommands do not pay for it.
    const [{ createAgent }, { ServiceNotifier }, { notifyAgent }] = await Promise.all([
      import('../../agent/index.js'),
      import('../../systemd/notifier.js'),
      import('../../systemd/agent-notify.js'),
    ]);
    const log = createLogger({ name: 'ufdl-agent', level: logLevelFrom(config, flags.logLevel) });
    // Before the agent exists: it takes NOTIFY_SOCKET out of the environment that jobs inherit.
    let agent: import('../../agent/index.js').Agent | undefined;
    const notifier = new ServiceNotifier({ log, healthy: () => agent?.liveness() ?? { ok: true, reasons: [] } });
    let stopReloading = () => {};
    agent = await startAgentFromCli(
      () => createAgent(agentOptionsFrom(config), log),
      (created) => {
        notifyAgent(created, notifier);
        stopReloading = onAgentReloadSignal(created, { log, initial: config, load, levelFlag: flags.logLevel }, agentOptionsFrom);
      },
    );
    await agent.whenStopped();
    stopReloading();
    notifier.close();
    // A journal write failed under running jobs: exit so that systemd restarts the agent and its
    // recovery settles them (the children keep running and are re-attached).
    if (agent.restartNeeded !== undefined) throw new CliError(EXIT.JOURNAL_WRITE_FAILED, agent.restartNeeded);
    log.info('agent stopped');
  });
}
