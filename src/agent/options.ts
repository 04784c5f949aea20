/**
 * Agent options in three layers (docs/ARCHITECTURE.md, "Conventions"): `AgentOptions` (what the
 * configuration loader or a test passes), `AGENT_DEFAULTS`, and the frozen `ResolvedAgentOptions`
 * every module reads. Units are in the names.
 *
 * `AGENT_DEFAULTS` is the one source of the agent's defaults: the configuration keys that set these
 * options take theirs from it (`cli/config/keys.ts`, in seconds where a key is in seconds).
 */
import { dirname, join, resolve } from 'node:path';
import { MAX_TIMER_MS, resolveServerUrls } from '../client/options.js';
import { MIN_LOG_MAX_BYTES } from '../protocol/live-log.js';

export interface AgentOptions {
  /**
   * Base URL of the UFDL server; or several, in order of preference: replicas sharing one database
   * (docs/ARCHITECTURE.md, "Failover"). The first names the server in the journal.
   */
  serverUrl: string | readonly string[];
  username: string;
  /** The password, or a function that gives it at each login (the CLI's reads `server.password_file` again). */
  password: string | (() => string);
  /** Parent of the per-job directories (`<workDir>/<jobPk>/`). Created if missing. */
  workDir: string;
  /** The SQLite journal. @default {@link defaultJournalFile} of `workDir`: `journal.sqlite3` beside it */
  journalFile?: string;
  /** Concurrent jobs. 0 = one per detected GPU, or 1 on a node without GPUs. @default 0 */
  slots?: number;
  /** Idle poll schedule in seconds: the i-th empty poll waits `pollScheduleS[i]`, sticking on the last. @default [10, 30] */
  pollScheduleS?: number[];
  /** Back-off schedule in seconds after server errors, separate from the idle schedule. @default [10, 30, 60] */
  errorBackoffS?: number[];
  /** `X-UFDL-Wait` seconds sent on polls when the server offers wake-up. @default 30 */
  waitSeconds?: number;
  /** How often a running job is re-read to notice cancellation. @default 10000 */
  cancelCheckIntervalMs?: number;
  /** At most one progress report per job per interval. @default 1000 */
  progressIntervalMs?: number;
  /** First SIGTERM/SIGINT: how long running jobs may finish before they are stopped. @default 600000 */
  drainTimeoutMs?: number;
  /** Between the group SIGTERM and SIGKILL of a child. @default 10000 */
  killGraceMs?: number;
  /** Keep job directories after a job ends. @default false */
  keepJobDirs?: boolean;
  /** Node identity override: the ip the node registers with (NAT, DHCP). @default detected */
  nodeIp?: string;
  /** Node identity index (the reference's gpu_id). @default 0 */
  nodeIndex?: number;
  /** A job that crashed the node this many times is finished with an error, not retried. @default 3 */
  maxRestarts?: number;
  /** Self-fencing: stop children when the server is unreachable for lost_after minus this. @default 60000 */
  fenceMarginMs?: number;
  /** A candidate that failed preparation is skipped this long. @default 300000 */
  skipFailedForMs?: number;
  /** Status/health endpoint; port 0 = a free port, null = off. @default { host: '127.0.0.1', port: 8001 } */
  status?: { host: string; port: number } | null;
  /** Per-call HTTP timeout. @default 30000 */
  requestTimeoutMs?: number;
  /** Disk space below which the agent reports not ready and takes no job. @default 1 GiB */
  minFreeDiskBytes?: number;
  /** `GET /v1/nodes/ping` for each node with a running job; capped at a quarter of the fence threshold. @default 30000 */
  heartbeatIntervalMs?: number;
  /** Re-check schedule (seconds, sticking on the last) while the server refuses the credentials. @default [5, 15, 60, 300] */
  authRetryS?: number[];
  /** A poll iteration running longer than this is abandoned by the watchdog. 0 = derived from the wait and request timeouts. @default 0 */
  watchdogMs?: number;
  /** How often GPUs and memory are detected again (the node records are updated when they change); 0 = only on SIGHUP. @default 300000 */
  hardwareIntervalMs?: number;
  /** Offer `ufdl_agent.Docker`: 'auto' when a Docker engine answers. @default 'auto' */
  docker?: boolean | 'auto';
  /** `--network` of job containers: `none`, `bridge`, `host`, or a network's name. @default 'bridge' */
  dockerNetwork?: string;
  /** When job images are pulled: `always`, when `missing`, or `never`. @default 'missing' */
  dockerPull?: 'never' | 'missing' | 'always';
  /** Stream running jobs' logs to a server that offers live logs. @default true */
  liveLogs?: boolean;
  /** A job log over this keeps its head and tail (the `log` output and the live log). @default 64 MiB */
  logMaxBytes?: number;
  // ── several server addresses (failover) ──
  /** With several server addresses: how often the agent tries to go back to the first one. @default 60000 */
  failbackAfterMs?: number;
}

export const AGENT_DEFAULTS = {
  slots: 0,
  pollScheduleS: [10, 30],
  errorBackoffS: [10, 30, 60],
  waitSeconds: 30,
  cancelCheckIntervalMs: 10_000,
  progressIntervalMs: 1_000,
  drainTimeoutMs: 600_000,
  killGraceMs: 10_000,
  keepJobDirs: false,
  nodeIndex: 0,
  maxRestarts: 3,
  fenceMarginMs: 60_000,
  skipFailedForMs: 300_000,
  status: { host: '127.0.0.1', port: 8001 },
  requestTimeoutMs: 30_000,
  minFreeDiskBytes: 1024 ** 3,
  heartbeatIntervalMs: 30_000,
  authRetryS: [5, 15, 60, 300],
  watchdogMs: 0,
  hardwareIntervalMs: 300_000,
  docker: 'auto',
  dockerNetwork: 'bridge',
  dockerPull: 'missing',
  liveLogs: true,
  logMaxBytes: 64 * 1024 ** 2,
  failbackAfterMs: 60_000,
} as const;

export type ResolvedAgentOptions = Readonly<
  Required<Omit<AgentOptions, 'nodeIp' | 'status' | 'docker' | 'serverUrl'>> & {
    /** The first server address, without a trailing slash: the server's name in the journal. */
    serverUrl: string;
    /** Every server address in order of preference, without trailing slashes (the first is `serverUrl`). */
    serverUrls: readonly string[];
    nodeIp: string | undefined;
    status: { host: string; port: number } | null;
    docker: boolean | 'auto';
  }
>;

/** The journal of an agent whose work directory is `workDir`: `journal.sqlite3` beside that directory. */
export function defaultJournalFile(workDir: string): string {
  return join(dirname(resolve(workDir)), 'journal.sqlite3');
}

export function resolveAgentOptions(options: AgentOptions): ResolvedAgentOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const resolved = {
    ...AGENT_DEFAULTS,
    pollScheduleS: [...AGENT_DEFAULTS.pollScheduleS],
    errorBackoffS: [...AGENT_DEFAULTS.errorBackoffS],
    authRetryS: [...AGENT_DEFAULTS.authRetryS],
    journalFile: defaultJournalFile(options.workDir),
    nodeIp: undefined,
    ...defined,
  } as ResolvedAgentOptions;
  const nonNegative = [
    'slots',
    'waitSeconds',
    'cancelCheckIntervalMs',
    'progressIntervalMs',
    'drainTimeoutMs',
    'killGraceMs',
    'nodeIndex',
    'maxRestarts',
    'fenceMarginMs',
    'skipFailedForMs',
    'requestTimeoutMs',
    'minFreeDiskBytes',
    'heartbeatIntervalMs',
    'watchdogMs',
    'hardwareIntervalMs',
    'failbackAfterMs',
  ] as const;
  for (const key of nonNegative) {
    const value = resolved[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`Agent option '${key}' must be a non-negative number, got ${JSON.stringify(value)}`);
    }
  }
  for (const key of ['pollScheduleS', 'errorBackoffS', 'authRetryS'] as const) {
    const list = resolved[key];
    // Zero would poll (or retry) again at once, for good.
    if (!Array.isArray(list) || list.length === 0 || list.some((n) => typeof n !== 'number' || !(n > 0))) {
      throw new TypeError(`Agent option '${key}' must be a non-empty list of positive seconds, got ${JSON.stringify(list)}`);
    }
  }
  // A node timer waits at most MAX_TIMER_MS (about 24.8 days) and runs a longer one after 1 ms: a
  // drain timeout or kill grace meant as "practically never" would end at once. Longer is that long.
  const mutable = resolved as { -readonly [K in keyof ResolvedAgentOptions]: ResolvedAgentOptions[K] };
  for (const key of nonNegative) {
    if (key.endsWith('Ms')) mutable[key] = Math.min(resolved[key], MAX_TIMER_MS);
  }
  for (const key of ['pollScheduleS', 'errorBackoffS', 'authRetryS'] as const) {
    mutable[key] = resolved[key].map((s) => Math.min(s, MAX_TIMER_MS / 1000));
  }
  if (resolved.heartbeatIntervalMs <= 0) {
    throw new TypeError(`Agent option 'heartbeatIntervalMs' must be a positive number, got ${resolved.heartbeatIntervalMs}`);
  }
  if (!Number.isSafeInteger(resolved.logMaxBytes) || resolved.logMaxBytes < MIN_LOG_MAX_BYTES) {
    throw new TypeError(`Agent option 'logMaxBytes' must be an integer of at least ${MIN_LOG_MAX_BYTES} bytes, got ${JSON.stringify(resolved.logMaxBytes)}`);
  }
  if (resolved.status !== null && (!Number.isInteger(resolved.status.port) || resolved.status.port < 0 || resolved.status.port > 65535)) {
    throw new TypeError(`Agent option 'status' must have a port in [0, 65535] (or be null: no status endpoint), got ${JSON.stringify(resolved.status.port)}`);
  }
  if (resolved.docker !== true && resolved.docker !== false && resolved.docker !== 'auto') {
    throw new TypeError(`Agent option 'docker' must be true, false or 'auto', got ${JSON.stringify(resolved.docker)}`);
  }
  if (typeof resolved.dockerNetwork !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(resolved.dockerNetwork)) {
    throw new TypeError(`Agent option 'dockerNetwork' must be none, bridge, host or a network's name, got ${JSON.stringify(resolved.dockerNetwork)}`);
  }
  if (!['never', 'missing', 'always'].includes(resolved.dockerPull)) {
    throw new TypeError(`Agent option 'dockerPull' must be never, missing or always, got ${JSON.stringify(resolved.dockerPull)}`);
  }
  let serverUrls: string[];
  try {
    serverUrls = resolveServerUrls(options.serverUrl as string | readonly string[]).map((url) => url.replace(/\/+$/, ''));
  } catch (err) {
    throw new TypeError((err as Error).message.replace(/^Client option/, 'Agent option'));
  }
  return Object.freeze({ ...resolved, serverUrl: serverUrls[0]!, serverUrls: Object.freeze(serverUrls) });
}

/**
 * The settings a running agent applies without a restart (a SIGHUP re-reads the configuration):
 * the idle poll schedule and the slot count. Every other setting needs a restart; the agent logs
 * which ones changed. (The log level is the CLI's: it owns the logger.)
 */
export const LIVE_OPTIONS = ['pollScheduleS', 'slots'] as const satisfies readonly (keyof ResolvedAgentOptions)[];

export interface OptionsChange {
  /** Changed settings now in force. */
  applied: string[];
  /** Changed settings that take effect at the next start. */
  needRestart: string[];
}

/** Which settings differ between `current` and `next`, split by whether they apply live. */
export function compareOptions(current: ResolvedAgentOptions, next: ResolvedAgentOptions): OptionsChange {
  const live = new Set<string>(LIVE_OPTIONS);
  const changed = (Object.keys(next) as (keyof ResolvedAgentOptions)[]).filter((k) => JSON.stringify(current[k]) !== JSON.stringify(next[k]));
  return { applied: changed.filter((k) => live.has(k)), needRestart: changed.filter((k) => !live.has(k)) };
}
