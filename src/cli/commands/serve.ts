/**
 * `ufdl-agent serve`: the embedded UFDL server, on SQLite or PostgreSQL, until SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import type { ServerOptions } from '../../server/options.js';
import { CliError } from '../cli-error.js';
import { loadConfig, readConfig, secretValue, type EffectiveConfig } from '../config/load.js';
import { optionRefusal } from '../config/option-keys.js';
import { EXIT } from '../exit-codes.js';
import { createLogger, logLevelFrom } from '../logger.js';
import { interruptible } from '../interrupt.js';
import { onReloadSignal } from '../reload.js';
import { onStopSignals } from '../signals.js';
import { commonFlags, type CommonFlags } from '../flags.js';

export function serverOptionsFrom(config: EffectiveConfig): ServerOptions {
  const c = readConfig(config);
  const nodeActions = c.string('serve.node_actions');
  return {
    dataDir: c.string('serve.data_dir'),
    databaseUrl: secretValue(config, 'serve.database_url'),
    databasePasswordFile: c.optionalString('serve.database_password_file'),
    host: c.string('serve.host'),
    port: c.number('serve.port'),
    extensions: c.bool('serve.extensions'),
    maxOutputBytes: c.number('serve.max_output_bytes'),
    maxLiveLogBytes: c.number('serve.max_live_log_bytes'),
    lostAfterSeconds: c.number('serve.lost_after'),
    headersTimeoutSeconds: c.number('serve.headers_timeout'),
    idleTimeoutSeconds: c.number('serve.idle_timeout'),
    maxConnectionsPerAddress: c.number('serve.max_connections_per_address'),
    maxConnections: c.optionalNumber('serve.max_connections'),
    maxWaitFiltersPerUser: c.number('serve.max_wait_filters_per_user'),
    searchTimeLimitSeconds: c.number('serve.search_time_limit'),
    loginFailuresAllowed: c.number('serve.login_failures_allowed'),
    // The loader allows only the key's choices.
    nodeActions: nodeActions === 'workers' ? 'workers' : 'any',
    metricsToken: secretValue(config, 'serve.metrics_token'),
    allowAnonymousWebsocket: c.bool('serve.allow_anonymous_websocket'),
    accessTokenSeconds: c.number('serve.access_token_lifetime'),
    refreshTokenSeconds: c.number('serve.refresh_token_lifetime'),
    adminUser: c.string('serve.admin_user'),
    adminPassword: secretValue(config, 'serve.admin_password'),
  };
}

export function registerServe(program: Command): void {
  commonFlags(
    program
      .command('serve')
      .description('Run the embedded UFDL server (SQLite database and output store under --data, or the state in PostgreSQL with --database)')
      .option('--data <dir>', 'data directory (serve.data_dir)')
      .option('--database <url>', 'postgres://user@host:port/database (serve.database_url; the password from serve.database_password_file or UFDL_DATABASE_PASSWORD)')
      .option('--host <address>', 'address to listen on (serve.host)')
      .option('--port <port>', 'port to listen on (serve.port)')
      .option('--no-extensions', 'strict reference mode: no wake-up, lost-node recovery, capability discovery, live logs or dashboard'),
  ).action(async (flags: CommonFlags & { data?: string; database?: string; host?: string; port?: string; extensions?: boolean }) => {
    const load = () =>
      loadConfig({
        file: flags.config,
        flags: {
          'serve.data_dir': flags.data,
          'serve.database_url': flags.database,
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
    // A stop signal while starting (the start may wait minutes for the resolver, host-lookup-wait.ts)
    // ends the start and the command, status 0, as a stop once serving does.
    // While it waits for the resolver, `systemctl status` says so, not "opening the database".
    const onProgress = (what: string) => notifier.status(`starting: ${what}`);
    const server = await startUnlessStopped(config, (signal) => startServer(serverOptionsFrom(config), log, { signal, onProgress }));
    if (server === undefined) {
      notifier.close();
      log.info('stopped while starting');
      return;
    }
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
 * Start a server, or nothing (undefined) when a stop signal comes while it starts: the start may wait
 * minutes for the resolver (host-lookup-wait.ts), and without a handler the signal would end the
 * process outright. A server that came up meanwhile is closed. A failed start is {@link startProblem}'s.
 */
export async function startUnlessStopped<S extends { close(): Promise<void> }>(
  config: EffectiveConfig,
  start: (signal: AbortSignal) => Promise<S>,
): Promise<S | undefined> {
  return interruptible((signal) => startUnlessAborted(config, signal, start));
}

/**
 * {@link startUnlessStopped} for a command that handles the stop signals itself (standalone,
 * routed-signals.ts): the start ends, or does not begin, once `signal` is aborted.
 */
export async function startUnlessAborted<S extends { close(): Promise<void> }>(
  config: EffectiveConfig,
  signal: AbortSignal,
  start: (signal: AbortSignal) => Promise<S>,
): Promise<S | undefined> {
  // Stopped before the start began (a signal while the command loaded): create nothing.
  if (signal.aborted) return undefined;
  const started = await start(signal).catch((err: unknown) => {
    if (signal.aborted) return undefined;
    throw startProblem(err, config);
  });
  if (signal.aborted) await started?.close();
  return signal.aborted ? undefined : started;
}

/**
 * A server that cannot start, as one line and a named status: an option it refuses, database settings that do not work
 * (the configuration status), a database that cannot be reached (unavailable, so systemd retries),
 * or an address it cannot listen on — naming the address, where the port came from, and how to
 * choose another (the configuration status; a host name the resolver could not look up just now:
 * the temporary-failure status, so systemd retries).
 */
export function startProblem(err: unknown, config: EffectiveConfig): unknown {
  // A value the loader takes but the server refuses (`serve.lost_after = 0`, a port above 65535): the
  // key and its source, with the configuration status, as the loader's own refusals.
  const refusal = optionRefusal(err, config);
  if (refusal !== undefined) return refusal;
  if (err instanceof Error && err.name === 'DatabaseSettingsError') return new CliError(EXIT.CONFIG, err.message);
  if (err instanceof Error && err.name === 'DatabaseUnreachableError') return new CliError(EXIT.UNAVAILABLE, `cannot use the PostgreSQL database: ${err.message}`);
  // A rolled-back upgrade, or a data directory or database of another installation: a restart of this
  // version would refuse it again.
  if (err instanceof Error && err.name === 'NewerSchemaError') {
    return new CliError(EXIT.CONFIG, `${err.message}: run the ufdl-agent version that wrote it (or a newer one), or check serve.data_dir / serve.database_url`);
  }
  if (!(err instanceof Error) || err.name !== 'ListenError') return err;
  const code = (err as Error & { code?: string }).code;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    const hostSource = config.sources['serve.host'] ?? 'default';
    const hostFrom = hostSource === 'default' ? 'the default' : hostSource === 'flag' ? '--host' : hostSource.startsWith('env ') ? hostSource.slice(4) : hostSource;
    // The resolver did not answer (at boot, before DNS works), not even within the wait for it
    // (host-lookup-wait.ts): nothing to fix in the configuration, so the temporary-failure status,
    // which systemd restarts, not the configuration one, which it does not.
    if (code === 'EAI_AGAIN') {
      return new CliError(EXIT.TEMPFAIL, `${err.message} (host from ${hostFrom}); start it again once the resolver answers (systemd does), or give serve.host as an address`);
    }
    return new CliError(EXIT.CONFIG, `${err.message} (host from ${hostFrom}); choose another with --host or UFDL_AGENT_SERVE_HOST (serve.host in a configuration file)`);
  }
  const source = config.sources['serve.port'] ?? 'default';
  const from = source === 'default' ? 'the default' : source === 'flag' ? '--port' : source.startsWith('env ') ? source.slice(4) : source;
  return new CliError(
    EXIT.CONFIG,
    `${err.message} (port from ${from}); choose another with --port or UFDL_AGENT_SERVE_PORT (serve.port in a configuration file)`,
  );
}

