/**
 * Which configuration key sets each agent and server option, so that an option the agent or the
 * server refuses (a value the loader takes but the option does not: a negative `agent.slots`, a
 * `serve.lost_after` of 0, a port above 65535) is reported as the key and where its value came from,
 * as the loader's own refusals are, with the configuration status (78).
 */
import { ConfigError } from './errors.js';
import type { EffectiveConfig } from './load.js';

/** Agent option → key (`cli/agent-options.ts` sets each option from its key). */
export const AGENT_OPTION_KEYS: Readonly<Record<string, string>> = {
  serverUrl: 'server.url',
  username: 'server.username',
  requestTimeoutMs: 'server.timeout',
  failbackAfterMs: 'server.failback_after',
  workDir: 'agent.work_dir',
  journalFile: 'agent.journal',
  slots: 'agent.slots',
  pollScheduleS: 'agent.poll_interval',
  errorBackoffS: 'agent.error_backoff',
  waitSeconds: 'agent.wait',
  cancelCheckIntervalMs: 'agent.cancel_check_interval',
  progressIntervalMs: 'agent.progress_interval',
  drainTimeoutMs: 'agent.drain_timeout',
  killGraceMs: 'agent.kill_grace',
  keepJobDirs: 'agent.keep_job_dirs',
  nodeIp: 'agent.node_ip',
  nodeIndex: 'agent.node_index',
  maxRestarts: 'agent.max_restarts',
  fenceMarginMs: 'agent.fence_margin',
  minFreeDiskBytes: 'agent.min_free_disk',
  status: 'agent.status_port',
  hardwareIntervalMs: 'agent.hardware_interval',
  docker: 'agent.docker',
  dockerNetwork: 'agent.docker_network',
  dockerPull: 'agent.docker_pull',
  liveLogs: 'logs.live',
  logMaxBytes: 'logs.max_bytes',
};

/** Server option → key (`cli/commands/serve.ts` sets each option from its key). */
export const SERVER_OPTION_KEYS: Readonly<Record<string, string>> = {
  dataDir: 'serve.data_dir',
  databaseUrl: 'serve.database_url',
  databasePasswordFile: 'serve.database_password_file',
  host: 'serve.host',
  port: 'serve.port',
  extensions: 'serve.extensions',
  maxOutputBytes: 'serve.max_output_bytes',
  maxLiveLogBytes: 'serve.max_live_log_bytes',
  lostAfterSeconds: 'serve.lost_after',
  headersTimeoutSeconds: 'serve.headers_timeout',
  idleTimeoutSeconds: 'serve.idle_timeout',
  maxConnectionsPerAddress: 'serve.max_connections_per_address',
  maxConnections: 'serve.max_connections',
  maxWaitFiltersPerUser: 'serve.max_wait_filters_per_user',
  searchTimeLimitSeconds: 'serve.search_time_limit',
  loginFailuresAllowed: 'serve.login_failures_allowed',
  nodeActions: 'serve.node_actions',
  metricsToken: 'serve.metrics_token',
  allowAnonymousWebsocket: 'serve.allow_anonymous_websocket',
  accessTokenSeconds: 'serve.access_token_lifetime',
  refreshTokenSeconds: 'serve.refresh_token_lifetime',
  adminUser: 'serve.admin_user',
  adminPassword: 'serve.admin_password',
};

/**
 * `err`, an option's refusal (`Agent option 'slots' must be …`, `Server option 'port' must be …`), as
 * a {@link ConfigError} naming the key that set the option and its source; undefined for any other
 * error. An option no key sets is named as it is, with a pointer to `ufdl-agent config`.
 */
export function optionRefusal(err: unknown, config: EffectiveConfig): ConfigError | undefined {
  const message = err instanceof Error ? err.message : undefined;
  const match = message === undefined ? null : /^(Agent|Server) option '([A-Za-z]+)(?:\[\d+\])?'\s*(.*)$/s.exec(message);
  if (match === null) return undefined;
  const [, kind, option, rest] = match as unknown as [string, string, string, string];
  const key = (kind === 'Agent' ? AGENT_OPTION_KEYS : SERVER_OPTION_KEYS)[option];
  if (key === undefined) return new ConfigError(`${message} (from the configuration: see 'ufdl-agent config')`);
  return new ConfigError(`Configuration key '${key}' from ${config.sources[key] ?? 'default'}: ${rest}`);
}
