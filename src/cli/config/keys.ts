/**
 * Every configuration key: its section, type, default, meaning, and the environment variable that
 * sets it. One table drives the TOML loader, the environment reader, validation messages and
 * `ufdl-agent config`. `config/agent.toml` and `config/server.toml` document the same keys.
 *
 * A key that sets an agent option takes its default from the agent's own (`AGENT_DEFAULTS`, in the
 * agent's units; these keys count seconds where the option counts milliseconds), so the two cannot
 * drift apart; `cli/agent-options.ts` maps the keys to the options.
 */
import { AGENT_DEFAULTS as AGENT } from '../../agent/options.js';

/** An agent option's milliseconds as a key's seconds. */
const seconds = (ms: number): number => ms / 1000;

export type KeyType = 'string' | 'int' | 'number' | 'bool' | 'seconds-list' | 'url-list';

export interface KeyDef {
  section: 'server' | 'agent' | 'logs' | 'serve';
  name: string;
  type: KeyType;
  default: string | number | boolean | number[] | string[] | null;
  doc: string;
  /** Never printed or logged; `config` shows `(set)`. */
  secret?: boolean;
  /** The values a string key may take. */
  choices?: readonly string[];
  /** A number key that must be above 0 (a timeout of 0 would fail every request at once). */
  positive?: boolean;
}

const key = (section: KeyDef['section'], name: string, type: KeyType, def: KeyDef['default'], doc: string, secret = false): KeyDef => ({
  section,
  name,
  type,
  default: def,
  doc,
  secret,
});

export const KEYS: readonly KeyDef[] = [
  // Where the agent and the operator CLI find the server, and as whom.
  key('server', 'url', 'url-list', ['http://127.0.0.1:8000'], 'Base URL of the UFDL server; or several, in order of preference (replicas sharing one database): a list, or comma-separated.'),
  key('server', 'username', 'string', 'admin', 'User the agent and the CLI log in as.'),
  key('server', 'password', 'string', null, 'Password (prefer password_file or the environment).', true),
  key('server', 'password_file', 'string', null, 'File whose first line, without surrounding white space, is the password.'),
  { ...key('server', 'timeout', 'number', seconds(AGENT.requestTimeoutMs), 'Seconds before an HTTP call is abandoned.'), positive: true },
  { ...key('server', 'failback_after', 'number', seconds(AGENT.failbackAfterMs), 'With several server addresses: seconds between attempts to go back to the first one.'), positive: true },
  key('server', 'token_cache', 'bool', true, "The CLI keeps its tokens for the next command in a file only this user can read (the agent never does); `ufdl-agent logout` removes it."),

  // The agent daemon (`run`).
  key('agent', 'work_dir', 'string', './data/agent/work', 'Parent of the per-job directories.'),
  key('agent', 'journal', 'string', null, 'SQLite journal file (default: journal.sqlite3 beside work_dir).'),
  key('agent', 'slots', 'int', AGENT.slots, 'Concurrent jobs; 0 = one per GPU, or 1 without GPUs.'),
  key('agent', 'poll_interval', 'seconds-list', [...AGENT.pollScheduleS], 'Idle poll schedule in seconds, sticking on the last.'),
  key('agent', 'error_backoff', 'seconds-list', [...AGENT.errorBackoffS], 'Back-off schedule in seconds after server errors.'),
  key('agent', 'wait', 'int', AGENT.waitSeconds, 'Seconds a poll may wait on a server that offers wake-up (X-UFDL-Wait).'),
  key('agent', 'cancel_check_interval', 'number', seconds(AGENT.cancelCheckIntervalMs), 'Seconds between re-reads of a running job to notice cancellation.'),
  key('agent', 'progress_interval', 'number', seconds(AGENT.progressIntervalMs), 'At most one progress report per job per this many seconds.'),
  key('agent', 'drain_timeout', 'number', seconds(AGENT.drainTimeoutMs), 'Seconds running jobs may finish after the first SIGTERM.'),
  key('agent', 'kill_grace', 'number', seconds(AGENT.killGraceMs), 'Seconds between SIGTERM and SIGKILL of a job.'),
  key('agent', 'keep_job_dirs', 'bool', AGENT.keepJobDirs, 'Keep job directories after jobs end.'),
  key('agent', 'node_ip', 'string', null, 'Node identity override (default: the primary IPv4).'),
  key('agent', 'node_index', 'int', AGENT.nodeIndex, "Node identity index (the reference's gpu_id)."),
  key('agent', 'max_restarts', 'int', AGENT.maxRestarts, 'A job that crashed the node this often is failed, not retried.'),
  key('agent', 'fence_margin', 'number', seconds(AGENT.fenceMarginMs), 'Seconds before lost_after at which an unreachable agent stops its children.'),
  key('agent', 'status_host', 'string', AGENT.status.host, 'Address of the status endpoint (/livez, /readyz, /status.json, /metrics).'),
  key('agent', 'status_port', 'int', AGENT.status.port, 'Port of the status endpoint; -1 turns it off.'),
  key('agent', 'min_free_disk', 'int', AGENT.minFreeDiskBytes, 'Bytes of free disk in work_dir below which no job is taken.'),
  key('agent', 'hardware_interval', 'number', seconds(AGENT.hardwareIntervalMs), 'Seconds between looks at the GPUs and memory (node records follow changes); 0 = only on SIGHUP.'),
  // Jobs in containers (the `ufdl_agent.Docker` executor).
  { ...key('agent', 'docker', 'string', 'auto', "Offer the Docker executor: 'auto' when an engine answers, 'on' or 'off'."), choices: ['auto', 'on', 'off'] },
  key('agent', 'docker_network', 'string', AGENT.dockerNetwork, "--network of job containers: 'none' (no network), 'bridge', 'host', or a network's name."),
  { ...key('agent', 'docker_pull', 'string', AGENT.dockerPull, "When job images are pulled: 'always', when 'missing', or 'never' (only images already on the node)."), choices: ['never', 'missing', 'always'] },
  key('agent', 'log_level', 'string', 'info', 'Log level: trace, debug, info, warn, error or fatal (a --log-level flag wins).'),

  // Job logs: the `log` output, and live logs on servers that offer them.
  key('logs', 'live', 'bool', AGENT.liveLogs, 'Stream running jobs\' logs to a server that offers live logs (never to the reference).'),
  key('logs', 'max_bytes', 'int', AGENT.logMaxBytes, 'A job log larger than this keeps its first half and its last quarter or so, with a line saying what was dropped.'),

  // The embedded server (`serve`, `standalone`).
  key('serve', 'data_dir', 'string', './data/server', 'Database and output store directory.'),
  key('serve', 'database_url', 'string', null, "postgres://user@host:port/database: keep the server's state in PostgreSQL, which several replicas may share (data_dir then holds only outputs and live logs, and must be shared too); unset = SQLite in data_dir.", true),
  key('serve', 'database_password_file', 'string', null, 'File holding the PostgreSQL password (else UFDL_DATABASE_PASSWORD, else the URL).'),
  key('serve', 'host', 'string', '127.0.0.1', 'Address to listen on.'),
  key('serve', 'port', 'int', 8000, 'Port to listen on.'),
  key('serve', 'extensions', 'bool', true, 'Wake-up, lost-node recovery, capability discovery, live logs and the dashboard; false = strict reference mode.'),
  key('serve', 'max_output_bytes', 'int', 8 * 1024 ** 3, 'Largest output upload in bytes.'),
  key('serve', 'max_live_log_bytes', 'int', 256 * 1024 ** 2, 'Largest cap (logs.max_bytes) an agent may give a live log; bounds the disk a job\'s live log takes.'),
  key('serve', 'lost_after', 'number', 600, 'Seconds after which a silent node loses its jobs.'),
  key('serve', 'headers_timeout', 'number', 20, "Seconds in which a request's headers must arrive (408 otherwise)."),
  key('serve', 'idle_timeout', 'number', 30, 'Seconds without a byte either way after which a connection is closed (wake-up polls and web-sockets excepted).'),
  key('serve', 'max_connections_per_address', 'int', 256, 'Connections one client address (IPv6: one /64) may hold at once; 0 = no cap.'),
  key('serve', 'max_connections', 'int', null, 'Connections the server holds at once; 0 = no cap (default: 80 % of the open-files limit).'),
  key('serve', 'max_wait_filters_per_user', 'int', 16, 'Distinct filters one user\'s waiting (X-UFDL-Wait) job lists may use at once, not counting the pks they exclude; a list beyond it is answered at once; 0 = no bound.'),
  { ...key('serve', 'search_time_limit', 'number', 10, 'Seconds a job or template list whose filter searches text (contains, case-insensitive exact) may take, waiting for other searches included; past it: 503, the search is abandoned.'), positive: true },
  key('serve', 'login_failures_allowed', 'int', 5, 'Failed logins of one user name that cost nothing; each one beyond them makes the next attempt wait (an address gets 4x as many); 0 = no throttling.'),
  { ...key('serve', 'node_actions', 'string', 'any', "Who may register and act as a node: 'any' user (as the reference) or 'workers' (worker accounts and admins)."), choices: ['any', 'workers'] },
  key('serve', 'metrics_token', 'string', null, 'Secret a scraper sends as "Authorization: Bearer …" to read /metrics (admins may use their token); unset = /metrics is open.', true),
  key('serve', 'metrics_token_file', 'string', null, 'File whose first line is metrics_token.'),
  key('serve', 'allow_anonymous_websocket', 'bool', false, 'Let web-socket watchers connect without a token (reference web UI).'),
  key('serve', 'access_token_lifetime', 'number', 300, 'Seconds an access token is valid.'),
  key('serve', 'refresh_token_lifetime', 'number', 28800, 'Seconds a refresh token is valid.'),
  key('serve', 'admin_user', 'string', 'admin', 'Admin created on first start.'),
  key('serve', 'admin_password', 'string', null, 'Its password; generated into DATA_DIR/admin-password when unset.', true),
];

/**
 * The environment variable of a key: `UFDL_AGENT_<NAME>` for agent keys (`UFDL_AGENT_SLOTS`),
 * `UFDL_AGENT_<SECTION>_<NAME>` for the others (`UFDL_AGENT_SERVER_URL`, `UFDL_AGENT_SERVE_PORT`).
 */
export function envName(def: KeyDef): string {
  return (def.section === 'agent' ? `UFDL_AGENT_${def.name}` : `UFDL_AGENT_${def.section}_${def.name}`).toUpperCase();
}

/** Older or shorter names also read, for the key they alias (issue 2 names the admin ones). */
export const ENV_ALIASES: Readonly<Record<string, string>> = {
  UFDL_ADMIN_USER: 'serve.admin_user',
  UFDL_ADMIN_PASSWORD: 'serve.admin_password',
};

export function keyId(def: KeyDef): string {
  return `${def.section}.${def.name}`;
}
