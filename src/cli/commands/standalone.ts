/**
 * `ufdl-agent standalone` (what `npm start` runs): the embedded server and one agent on this
 * machine, on a data directory it creates. The example templates are imported on first start; the
 * admin password is generated into `<data>/server/admin-password` unless configured. Ctrl-C drains
 * the agent (running jobs finish), then stops the server; a second Ctrl-C stops jobs now. Before the
 * agent exists, a stop signal (SIGTERM, SIGINT, SIGQUIT) ends the start, the server closed, status 0,
 * and a SIGHUP is done once the agent runs (routed-signals.ts). Starting again continues where it
 * stopped: same database, same journal, same node.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { CLI_ENTRY, packagePath } from '../../package-files.js';
import { agentOptionsFrom } from '../agent-options.js';
import { startAgentFromCli } from '../agent-start.js';
import { CliError } from '../cli-error.js';
import { EXIT } from '../exit-codes.js';
import { loadConfig, readConfig, type Source } from '../config/load.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { createLogger, logLevelFrom } from '../logger.js';
import { onAgentReloadSignal } from '../reload.js';
import { RoutedSignals } from '../routed-signals.js';
import { startUnlessAborted, serverOptionsFrom } from './serve.js';

const TEMPLATES_DIR = packagePath('config', 'templates');

export function registerStandalone(program: Command): void {
  commonFlags(
    program
      .command('standalone')
      .description('Run the embedded server and one agent on this machine (what `npm start` runs)')
      .option('--data <dir>', 'data directory for both: <dir>/server and <dir>/agent (serve.data_dir and agent.work_dir are not read)', './data')
      .option('--port <port>', 'server port (serve.port)')
      .option('--slots <n>', 'concurrent jobs of the agent (agent.slots)'),
  ).action(async (flags: CommonFlags & { data: string; port?: string; slots?: string }) => {
    // First of all: a signal from here on is this command's to handle (routed-signals.ts), never the
    // default action that would end the process outright, whichever step it comes in.
    const signals = new RoutedSignals();
    const data = resolve(flags.data);
    const serverData = join(data, 'server');
    const load = () =>
      loadConfig({
        file: flags.config,
        flags: {
          'serve.data_dir': serverData,
          'serve.port': flags.port,
          'agent.work_dir': join(data, 'agent', 'work'),
          'agent.slots': flags.slots,
        },
      });
    const config = load();
    // Loaded here, not at start-up, so that other subcommands do not pay for them.
    const [{ startServer, firstFreePort }, { createAgent }, { ServiceNotifier }, { notifyAgent }] = await Promise.all([
      import('../../server/serve.js'),
      import('../../agent/index.js'),
      import('../../systemd/notifier.js'),
      import('../../systemd/agent-notify.js'),
    ]);
    const log = createLogger({ name: 'ufdl-standalone', level: logLevelFrom(config, flags.logLevel) });
    let agent: import('../../agent/index.js').Agent | undefined;
    const notifier = new ServiceNotifier({ log, healthy: () => agent?.liveness() ?? { ok: true, reasons: [] } });
    // What `systemctl status` shows from the first moment: each step of the start; READY=1 only once
    // the agent polls (notifyAgent), the server answering by then.
    notifier.starting('starting: opening the database');

    // SIGHUP before the agent exists: nothing reads the configuration again yet, so it is done once
    // the agent runs, as `systemctl reload` asked.
    let reloadWanted = false;
    const reloadLater = () => {
      if (!reloadWanted) log.info({ signal: 'SIGHUP' }, 'SIGHUP while starting: the configuration is read again once the agent runs');
      reloadWanted = true;
    };
    // A second stop signal while stopping: exit now, as `serve` does (signals.ts).
    let stopping = false;
    const exitIfStopping = (signal: NodeJS.Signals) => {
      if (!stopping) return;
      log.warn({ signal }, 'second signal while stopping: exiting now');
      process.exit(1);
    };

    // A stop signal while the server starts (it may wait minutes for the resolver, host-lookup-wait.ts;
    // migrations may take a while) ends the start and the command, status 0, as `serve` does.
    const startAborted = new AbortController();
    signals.route({
      stop: (signal) => {
        exitIfStopping(signal);
        stopping = true;
        log.info({ signal }, 'stopping while the server starts');
        notifier.stopping('stopping: ending the server start');
        startAborted.abort();
      },
      reload: reloadLater,
    });
    const serverOptions = serverOptionsFrom(config);
    // The default ports may be taken (another standalone, say): take the next free ones, and say so.
    // A port the user chose is used as given or not at all.
    const chosen = (key: string) => (config.sources[key] ?? 'default') !== 'default';
    const statusPort = readConfig(config).number('agent.status_port');
    const server = await startUnlessAborted(config, startAborted.signal, (signal) =>
      startServer(serverOptions, log.child({ service: 'server' }), {
        nextFreePorts: chosen('serve.port') ? 0 : 20,
        avoidPorts: [statusPort],
        signal,
        onProgress: (what) => notifier.status(`starting: ${what}`),
      }),
    );
    if (server === undefined) {
      notifier.close();
      log.info('stopped while starting');
      return;
    }

    // From here until the agent has its own handlers, a stop closes the server (its writes flushed, its
    // store closed) and exits 0. The steps in between may be waiting on the server being closed: what
    // they throw then is the stop's doing, not an error (`stoppedBeforeAgent`).
    let stoppedBeforeAgent: Promise<never> | undefined;
    const closeServerAndExit = (signal: NodeJS.Signals) => {
      exitIfStopping(signal);
      stopping = true;
      log.info({ signal }, 'stopping while starting: closing the server');
      notifier.stopping('stopping: closing the server');
      stoppedBeforeAgent = server.close().then(
        () => {
          notifier.close();
          log.info('stopped while starting');
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    signals.route({ stop: closeServerAndExit, reload: reloadLater });
    notifier.status(`starting: the server listens on ${server.url}; importing the example templates, then starting the agent`);

    // While the server closes after a failed start or once the agent stopped: do not wait for it.
    const exitNow = (signal: NodeJS.Signals) => {
      log.warn({ signal }, 'signal while the server closes: exiting now');
      process.exit(1);
    };

    // The steps between the server and the agent.
    const prepareAgent = async () => {
      // The agent logs in as the admin: with the configured password, else the generated one.
      const passwordFile = join(serverData, 'admin-password');
      const password = serverOptions.adminPassword ?? (await readFile(passwordFile, 'utf8')).trim();
      const agentOptionsFor = (effective: typeof config) => ({
        ...agentOptionsFrom({ ...effective, values: { ...effective.values, 'server.password': password } }),
        serverUrl: server.url,
        username: serverOptions.adminUser ?? 'admin',
        password,
      });
      const agentOptions = agentOptionsFor(config);
      if (agentOptions.status && !chosen('agent.status_port')) {
        const { port, host } = agentOptions.status;
        const free = await firstFreePort(host, port, 20, [Number(new URL(server.url).port)]).catch(() => port);
        if (free !== port) log.warn({ wanted: port, port: free }, `status port ${port} is in use; the agent's status endpoint uses ${free}`);
        agentOptions.status = { host, port: free };
      }
      await importExampleTemplates(server.url, agentOptions.username, password, log);
      return { agentOptions, agentOptionsFor };
    };
    let started: Awaited<ReturnType<typeof prepareAgent>>;
    try {
      started = await prepareAgent();
    } catch (err) {
      if (stoppedBeforeAgent) return await stoppedBeforeAgent;
      // The start cannot go on (the admin password unreadable, the login or an import refused): the
      // server is closed, as when the agent does not start. Left open, it would serve on without an
      // agent, the process never ending, and systemd asked for more start time for good.
      notifier.close();
      signals.route({ stop: exitNow, reload: () => {} });
      await server.close();
      throw err;
    }
    // The step may have ended because of the stop: the stop exits the process.
    if (stoppedBeforeAgent) return await stoppedBeforeAgent;
    const { agentOptions, agentOptionsFor } = started;

    // Once the agent's own handlers are installed (createAgent: drain, stop now, exit now; and the
    // reload), this command's listeners leave the signals to them. Once they are gone again (the agent
    // stopped, or did not start), a signal means: do not wait for the server to close.
    try {
      agent = await startAgentFromCli(
        () => createAgent(agentOptions, log.child({ service: 'agent' })),
        (created) => {
          // READY=1 once the agent polls: the server already answers by then.
          notifyAgent(created, notifier);
          onAgentReloadSignal(created, { log, initial: config, load, levelFlag: flags.logLevel }, agentOptionsFor);
          signals.route({ stop: () => {}, reload: () => {} });
          // The SIGHUP that came while starting, through the agent's reload handler (one reload at a time).
          if (reloadWanted) process.emit('SIGHUP', 'SIGHUP');
        },
      );
    } catch (err) {
      notifier.close();
      signals.route({ stop: exitNow, reload: () => {} });
      await server.close();
      throw err;
    }
    printWelcome(server.url, agentOptions.username, serverOptions.adminPassword ? { configured: config.sources['serve.admin_password'] ?? 'default' } : { file: join(serverData, 'admin-password') });
    await agent.whenStopped();
    log.info('agent stopped; stopping the server');
    signals.route({ stop: exitNow, reload: () => {} });
    await server.close();
    notifier.close();
    // As `run`: a journal write failed under running jobs; the restart's recovery settles them.
    if (agent.restartNeeded !== undefined) throw new CliError(EXIT.JOURNAL_WRITE_FAILED, agent.restartNeeded);
    log.info('standalone stopped');
  });
}

/**
 * Import every `config/templates/*.json` whose name is not on the server yet: workable templates
 * first, then workflows (meta-templates), which name them.
 */
async function importExampleTemplates(url: string, username: string, password: string, log: Logger): Promise<void> {
  const { UfdlClient } = await import('../../client/api.js');
  const client = new UfdlClient({ serverUrl: url, username, password });
  const existing = new Set((await client.listTemplates({ include_inactive: false })).map((t) => t.name));
  let files: string[] = [];
  try {
    files = (await readdir(TEMPLATES_DIR)).filter((f) => f.endsWith('.json')).sort();
  } catch {
    log.warn({ dir: TEMPLATES_DIR }, 'no example templates found');
  }
  const specs = await Promise.all(files.map(async (file) => JSON.parse(await readFile(join(TEMPLATES_DIR, file), 'utf8')) as { name: string; specific?: object }));
  const isWorkflow = (spec: { specific?: object }) => spec.specific !== undefined && 'nodes' in spec.specific;
  for (const spec of [...specs.filter((s) => !isWorkflow(s)), ...specs.filter(isWorkflow)]) {
    if (existing.has(spec.name)) continue;
    const template = await client.importTemplate(spec);
    log.info({ template: template.name, pk: template.pk }, `imported example template ${template.name}`);
  }
}

/**
 * The welcome: where things are, and commands that work as printed (as the admin `username`). The
 * admin's password is never printed: the commands read it from the generated file, or from the
 * environment variable it was configured in; a password configured in a file is named, not shown.
 */
function printWelcome(url: string, username: string, password: { file: string } | { configured: Source }): void {
  const cli = relative(process.cwd(), packagePath(CLI_ENTRY)) || CLI_ENTRY;
  const env = [`UFDL_AGENT_SERVER_URL=${url}`];
  // The commands log in as server.username, 'admin' by default: name a differently named admin.
  if (username !== 'admin') env.push(`UFDL_AGENT_SERVER_USERNAME=${username}`);
  let login: string;
  if ('file' in password) {
    const file = relative(process.cwd(), password.file);
    env.push(`UFDL_AGENT_SERVER_PASSWORD_FILE=${file}`);
    login = `the password in ${file}`;
  } else if (password.configured.startsWith('env ')) {
    const variable = password.configured.slice('env '.length);
    env.push(`UFDL_AGENT_SERVER_PASSWORD="$${variable}"`);
    login = `the password in ${variable}`;
  } else {
    env.push('UFDL_AGENT_SERVER_PASSWORD=<serve.admin_password>');
    login = `the configured password (serve.admin_password, from ${password.configured})`;
  }
  const lines = [
    '',
    `  UFDL server   ${url}`,
    `  dashboard     ${url}/ui/`,
    `  admin login   ${username} / ${login}`,
    '  submit a job  ' + `${env.join(' ')} node ${cli} submit shell-hello --param name=world --wait`,
    '  a workflow    ' + `${env.join(' ')} node ${cli} submit train-then-predict --wait`,
    '  stop          Ctrl-C (running jobs finish first; Ctrl-C again stops them now)',
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
