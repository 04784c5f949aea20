/**
 * `ufdl-agent serve`: the embedded UFDL server on SQLite, until SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import type { ServerOptions } from '../../server/options.js';
import { CliError } from '../cli-error.js';
import { loadConfig, secretValue, type EffectiveConfig } from '../config/load.js';
import { EXIT } from '../exit-codes.js';
import { createLogger, logLevelFrom } from '../logger.js';
import { onReloadSignal } from '../reload.js';
import { onStopSignals } from '../signals.js';
import { commonFlags, type CommonFlags } from '../flags.js';

export function serverOptionsFrom(config: EffectiveConfig): ServerOptions {
  const v = config.values;
  return {
    dataDir: v['serve.data_dir'] as string,
    host: v['serve.host'] as string,
    port: v['serve.port'] as number,
    extensions: v['serve.extensions'] as boolean,
    maxOutputBytes: v['serve.max_output_bytes'] as number,
    maxLiveLogBytes: v['serve.max_live_log_bytes'] as number,
    lostAfterSeconds: v['serve.lost_after'] as number,
    headersTimeoutSeconds: v['serve.headers_timeout'] as number,
    idleTimeoutSeconds: v['serve.idle_timeout'] as number,
    maxConnectionsPerAddress: v['serve.max_connections_per_address'] as number,
    maxConnections: (v['serve.max_connections'] as number | null) ?? undefined,
    loginFailuresAllowed: v['serve.login_failures_allowed'] as number,
    nodeActions: v['serve.node_actions'] as 'any' | 'workers',
    metricsToken: secretValue(config, 'serve.metrics_token'),
    allowAnonymousWebsocket: v['serve.allow_anonymous_websocket'] as boolean,
    accessTokenSeconds: v['serve.access_token_lifetime'] as number,
    refreshTokenSeconds: v['serve.refresh_token_lifetime'] as number,
    adminUser: v['serve.admin_user'] as string,
    adminPassword: secretValue(config, 'serve.admin_password'),
  };
}

export function registerServe(program: Command): void {
  commonFlags(
    program
      .command('serve')
      .description('Run the embedded UFDL server (SQLite database and output store under --data)')
      .option('--data <dir>', 'data directory (serve.data_dir)')
      .option('--host <address>', 'address to listen on (serve.host)')
      .option('--port <port>', 'port to listen on (serve.port)')
      .option('--no-extensions', 'strict reference mode: no wake-up, lost-node recovery, capability discovery, live logs or dashboard'),
  ).action(async (flags: CommonFlags & { data?: string; host?: string; port?: string; extensions?: boolean }) => {
    const load = () =>
      loadConfig({
        file: flags.config,
        flags: {
          'serve.data_dir': flags.data,
          'serve.host': flags.host,
          'serve.port': flags.port,
          // commander sets `extensions: true` by default for --no-extensions; only an explicit off counts.
          'serve.extensions': flags.extensions === false ? false : undefined,
        },
      });
    const config = load();
    // Loaded here, not at start-up, so that other subcommands do not pay for it.
    const [{ startServer }, { ServiceNotifier }] = await Promise.all([import('../../server/serve.js'), import('../../systemd/notifier.js')]);
    const log = createLogger({ name: 'ufdl-server', level: logLevelFrom(config, flags.logLevel) });
    // SIGHUP: the log level applies at once; the server's own settings need a restart.
    onReloadSignal({ log, initial: config, load, levelFlag: flags.logLevel });
    const notifier = new ServiceNotifier({ log });
    notifier.starting('starting: opening the database');
    const server = await startServer(serverOptionsFrom(config), log).catch((err: unknown) => {
      throw listenProblem(err, config);
    });
    notifier.ready(`serving on ${server.url}`);
    onStopSignals(log, async () => {
      notifier.stopping('stopping: finishing in-flight requests, then closing the database');
      await server.close();
      notifier.close();
      log.info('server stopped');
    });
  });
}

/**
 * A server that cannot listen where the configuration says: one line naming the address, where the
 * port came from, and how to choose another; the configuration exit status.
 */
export function listenProblem(err: unknown, config: EffectiveConfig): unknown {
  if (!(err instanceof Error) || err.name !== 'ListenError') return err;
  const source = config.sources['serve.port'] ?? 'default';
  const from = source === 'default' ? 'the default' : source === 'flag' ? '--port' : source.startsWith('env ') ? source.slice(4) : source;
  return new CliError(
    EXIT.CONFIG,
    `${err.message} (port from ${from}); choose another with --port or UFDL_AGENT_SERVE_PORT (serve.port in a configuration file)`,
  );
}
