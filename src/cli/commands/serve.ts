/**
 * `ufdl-agent serve`: the embedded UFDL server on SQLite, until SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import type { ServerOptions } from '../../server/options.js';
import { loadConfig, secretValue, type EffectiveConfig } from '../config/load.js';
import { createLogger } from '../logger.js';
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
      .option('--no-extensions', 'strict reference mode: no wake-up, lost-node recovery or capability discovery'),
  ).action(async (flags: CommonFlags & { data?: string; host?: string; port?: string; extensions?: boolean }) => {
    const config = loadConfig({
      file: flags.config,
      flags: {
        'serve.data_dir': flags.data,
        'serve.host': flags.host,
        'serve.port': flags.port,
        // commander sets `extensions: true` by default for --no-extensions; only an explicit off counts.
        'serve.extensions': flags.extensions === false ? false : undefined,
      },
    });
    // Loaded here, not at start-up, so that other subcommands do not pay for it.
    const { startServer } = await import('../../server/serve.js');
    const log = createLogger({ name: 'ufdl-server', level: flags.logLevel });
    const server = await startServer(serverOptionsFrom(config), log);
    onStopSignals(log, async () => {
      await server.close();
      log.info('server stopped');
    });
  });
}
