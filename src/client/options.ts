/**
 * Client options in three layers (docs/ARCHITECTURE.md, "Conventions" 7): {@link ClientOptions} (what callers pass),
 * {@link DEFAULTS}, and the frozen {@link ResolvedClientOptions} every client module reads. Units are
 * in the names. Resolved once, when the client is built; errors name the key, expected and got.
 */
import { readFileSync } from 'node:fs';

/** The part of a pino logger the client uses; a pino `Logger` fits. */
export interface ClientLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ClientOptions {
  /**
   * Base URL of the UFDL server, e.g. `http://127.0.0.1:8000` (a path prefix is kept); or several,
   * in order of preference: the addresses of replicas sharing one database (`endpoints.ts`).
   */
  serverUrl: string | readonly string[];
  /** While away from the first address, ask it again this often and go back when it answers. @default 60000 */
  failbackAfterMs?: number;
  username: string;
  /**
   * The password, or a function that gives it at each login (the agent's reads its password file
   * again, so that a password fixed there is used without a restart). Exactly one of `password` and
   * `passwordFile` must be given.
   */
  password?: string | (() => string);
  /** A file holding the password (trailing newline stripped), read once at resolve time. */
  passwordFile?: string;
  /** The node pk to send as `Node-Id`; can be changed later with `setNodePk`. @default null */
  nodePk?: number | null;
  /** Time to establish the TCP (and TLS) connection. @default 5000 */
  connectTimeoutMs?: number;
  /** Time from the request being sent to the response headers. @default 30000 */
  responseTimeoutMs?: number;
  /** Total time of one ordinary (JSON) attempt. @default 60000 */
  requestTimeoutMs?: number;
  /** Uploads and downloads have no total limit; they fail when no byte moves for this long. @default 60000 */
  transferIdleTimeoutMs?: number;
  /** Attempts (the first included) of an idempotent call. @default 5 */
  retryAttempts?: number;
  /** No retry is started after this much time since the first attempt. @default 60000 */
  retryTotalMs?: number;
  /** First back-off delay; doubles per attempt, with jitter. @default 250 */
  retryBaseDelayMs?: number;
  /** Largest back-off delay (also caps a server's `Retry-After`). @default 10000 */
  retryMaxDelayMs?: number;
  /**
   * Refresh the access token ahead of expiry when less than this fraction of its life remains…
   * @default 0.2
   */
  refreshAheadFraction?: number;
  /** …or less than this (capped at half the token's life so short tokens are not refreshed per call). @default 60000 */
  refreshAheadMinMs?: number;
  /** `User-Agent` header. @default 'ufdl-agent-client' */
  userAgent?: string;
  /** pino logger (or anything with the same four methods). @default a silent logger */
  logger?: ClientLogger;
  /**
   * What sends the JSON calls: `got` (the long-running agent's), or `node-http`, node's own module
   * (`node-request.ts`), which a short-lived command loads in a fraction of got's time. Uploads,
   * downloads and live logs use got either way. @default 'got'
   */
  jsonEngine?: 'got' | 'node-http';
  /**
   * Where tokens outlive the process: read before the first login, written after every login and
   * refresh, dropped when the server refuses the login (`auth.ts`). @default none
   */
  tokenCache?: TokenCache;
}

/** A token and when it arrived (local clock, ms): its expiry is counted from then. */
export interface CachedToken {
  token: string;
  obtainedAt: number;
}

/** A place to keep the tokens of one server and user between processes (the CLI's is a file). */
export interface TokenCache {
  /** The tokens kept; undefined when there are none (or none usable). */
  load(): { access: CachedToken; refresh: CachedToken } | undefined;
  save(tokens: { access: CachedToken; refresh: CachedToken }): void;
  drop(): void;
}

export const DEFAULTS = Object.freeze({
  nodePk: null as number | null,
  connectTimeoutMs: 5_000,
  responseTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  transferIdleTimeoutMs: 60_000,
  retryAttempts: 5,
  retryTotalMs: 60_000,
  retryBaseDelayMs: 250,
  retryMaxDelayMs: 10_000,
  refreshAheadFraction: 0.2,
  refreshAheadMinMs: 60_000,
  userAgent: 'ufdl-agent-client',
  failbackAfterMs: 60_000,
  jsonEngine: 'got' as 'got' | 'node-http',
});

export interface ResolvedClientOptions {
  /** The first address; always ends with `/`, so API paths are appended without a leading slash. */
  readonly serverUrl: string;
  /** Every address, in order of preference, each ending with `/` (one for a single server). */
  readonly serverUrls: readonly string[];
  readonly failbackAfterMs: number;
  readonly username: string;
  /** The password, or what gives it at each login (see {@link ClientOptions.password}). */
  readonly password: string | (() => string);
  readonly nodePk: number | null;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly transferIdleTimeoutMs: number;
  readonly retryAttempts: number;
  readonly retryTotalMs: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly refreshAheadFraction: number;
  readonly refreshAheadMinMs: number;
  readonly userAgent: string;
  readonly logger: ClientLogger;
  readonly jsonEngine: 'got' | 'node-http';
  readonly tokenCache: TokenCache | undefined;
}

/**
 * The longest a node timer waits (2^31 - 1 ms, about 24.8 days): node runs a longer one after 1 ms,
 * so a timeout meant as "practically never" (`server.timeout = 3000000`) failed every request at
 * once. A longer timeout is this one.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` capped at {@link MAX_TIMER_MS}; anything but a finite number is left for validation to refuse. */
export function timerMs<T>(ms: T): T {
  return typeof ms === 'number' && Number.isFinite(ms) ? (Math.min(ms, MAX_TIMER_MS) as T) : ms;
}

const SILENT: ClientLogger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} });

function bad(key: string, expected: string, got: unknown): TypeError {
  // Never echo a password: callers only see its type.
  const shown = key === 'password' ? typeof got : JSON.stringify(got);
  return new TypeError(`Client option '${key}' must be ${expected}, got ${shown}`);
}

export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const serverUrls = resolveServerUrls(options.serverUrl);

  if (typeof options.username !== 'string' || options.username === '') throw bad('username', 'a non-empty string', options.username);
  const password = resolvePassword(options);

  const pick = <K extends keyof typeof DEFAULTS>(key: K): (typeof DEFAULTS)[K] => {
    const value = (options as unknown as Record<string, unknown>)[key];
    return (value === undefined ? DEFAULTS[key] : value) as (typeof DEFAULTS)[K];
  };
  const resolved: ResolvedClientOptions = {
    serverUrl: serverUrls[0]!,
    serverUrls,
    failbackAfterMs: pick('failbackAfterMs'),
    username: options.username,
    password,
    nodePk: pick('nodePk'),
    connectTimeoutMs: timerMs(pick('connectTimeoutMs')),
    responseTimeoutMs: timerMs(pick('responseTimeoutMs')),
    requestTimeoutMs: timerMs(pick('requestTimeoutMs')),
    transferIdleTimeoutMs: timerMs(pick('transferIdleTimeoutMs')),
    retryAttempts: pick('retryAttempts'),
    retryTotalMs: pick('retryTotalMs'),
    retryBaseDelayMs: timerMs(pick('retryBaseDelayMs')),
    retryMaxDelayMs: timerMs(pick('retryMaxDelayMs')),
    refreshAheadFraction: pick('refreshAheadFraction'),
    refreshAheadMinMs: pick('refreshAheadMinMs'),
    userAgent: pick('userAgent'),
    logger: options.logger ?? SILENT,
    jsonEngine: pick('jsonEngine'),
    tokenCache: options.tokenCache,
  };

  const positive = ['failbackAfterMs', 'connectTimeoutMs', 'responseTimeoutMs', 'requestTimeoutMs', 'transferIdleTimeoutMs', 'retryTotalMs', 'retryMaxDelayMs'] as const;
  for (const key of positive) {
    const value = resolved[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw bad(key, 'a positive number of milliseconds', value);
  }
  for (const key of ['retryBaseDelayMs', 'refreshAheadMinMs'] as const) {
    const value = resolved[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw bad(key, 'a non-negative number of milliseconds', value);
  }
  if (resolved.jsonEngine !== 'got' && resolved.jsonEngine !== 'node-http') throw bad('jsonEngine', "'got' or 'node-http'", resolved.jsonEngine);
  if (!Number.isInteger(resolved.retryAttempts) || resolved.retryAttempts < 1) throw bad('retryAttempts', 'an integer ≥ 1', resolved.retryAttempts);
  const fraction = resolved.refreshAheadFraction;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) throw bad('refreshAheadFraction', 'a number in [0, 1)', fraction);
  if (resolved.nodePk !== null && !(Number.isInteger(resolved.nodePk) && resolved.nodePk > 0)) throw bad('nodePk', 'a positive integer or null', resolved.nodePk);
  return Object.freeze(resolved);
}

/**
 * One address or several: each an absolute http(s) URL without credentials, query or fragment (the
 * last two are dropped), normalised to end with `/`; no address twice. The error names the address.
 */
export function resolveServerUrls(value: string | readonly string[]): readonly string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw bad('serverUrl', 'a URL or a non-empty list of URLs', value);
  const several = list.length > 1;
  const urls = list.map((raw: unknown, i) => {
    const which = several ? `serverUrl[${i}]` : 'serverUrl';
    let url: URL;
    try {
      url = new URL(String(raw));
      if (typeof raw !== 'string') throw new TypeError('not a string');
    } catch {
      throw bad(which, 'an absolute http(s) URL', raw);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(which, 'an http or https URL', raw);
    if (url.username || url.password) throw new TypeError(`Client option '${which}' must not contain credentials`);
    url.search = '';
    url.hash = '';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return url.toString();
  });
  const twice = urls.find((url, i) => urls.indexOf(url) !== i);
  if (twice !== undefined) throw new TypeError(`Client option 'serverUrl' lists ${JSON.stringify(twice)} twice`);
  return Object.freeze(urls);
}

function resolvePassword(options: ClientOptions): string | (() => string) {
  const hasPassword = options.password !== undefined;
  const hasFile = options.passwordFile !== undefined;
  if (hasPassword === hasFile) throw new TypeError("Client options: give exactly one of 'password' and 'passwordFile'");
  if (hasPassword) {
    if (typeof options.password === 'function') {
      const first: unknown = options.password();
      if (typeof first !== 'string') throw bad('password', 'a string, or a function that gives one', first);
      return options.password;
    }
    if (typeof options.password !== 'string') throw bad('password', 'a string', options.password);
    return options.password;
  }
  let text: string;
  try {
    text = readFileSync(options.passwordFile!, 'utf8');
  } catch (err) {
    throw new TypeError(`Client option 'passwordFile': cannot read ${JSON.stringify(options.passwordFile)}: ${(err as Error).message}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new TypeError(`Client option 'passwordFile': ${JSON.stringify(options.passwordFile)} is empty`);
  return password;
}
