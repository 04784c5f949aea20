/**
 * A UFDL API client for a CLI command, built from the effective configuration (file, then
 * `UFDL_AGENT_SERVER_*` environment, then `--server` / `--user` / `--password-file`), so operators
 * type the server and credentials once. The password never comes from a flag value: only from the
 * configuration (`server.password`, `server.password_file`), the environment or a file.
 *
 * Every failure of a call is turned into one line and a named exit status ({@link explain}):
 * refused credentials 77, an unreachable server 69 (with its URL), anything the server refused 1
 * with its detail.
 *
 * A command is short-lived and a person waits for it: its JSON calls go over node's own `http` (got
 * is loaded only by a command that uploads, downloads or reads a log), and its tokens are kept for
 * the next command (`token-cache.ts`, unless `server.token_cache` is off or `--no-token-cache`).
 */
import type { Command } from 'commander';
// The modules themselves, not the client's index: it re-exports what a command that only lists does not need.
import { UfdlClient } from '../client/api.js';
import { ClientError } from '../client/errors.js';
import { resolveServerUrls } from '../client/options.js';
import { CliError, oneLineUsageErrors, usageError } from './cli-error.js';
import { ConfigError, loadConfig, secretFromFile, secretValue, type EffectiveConfig } from './config/load.js';
import { EXIT } from './exit-codes.js';
import { commonFlags, type CommonFlags } from './flags.js';
import { TokenCacheFile } from './token-cache.js';
import { VERSION } from './version.js';

export interface ConnectFlags extends CommonFlags {
  server?: string;
  user?: string;
  passwordFile?: string;
  /** False with `--no-token-cache`. */
  tokenCache?: boolean;
}

/** Add the common flags plus `--server`, `--user` and (unless the command uses it otherwise) `--password-file`. */
export function connectFlags(command: Command, options: { passwordFile?: boolean } = {}): Command {
  commonFlags(oneLineUsageErrors(command))
    .option('--server <url>', 'UFDL server URL, or several comma-separated (server.url; also UFDL_AGENT_SERVER_URL)')
    .option('--user <name>', 'user to log in as (server.username; also UFDL_AGENT_SERVER_USERNAME)')
    .option('--no-token-cache', 'neither use nor keep cached tokens: log in with the password (server.token_cache)');
  if (options.passwordFile !== false) {
    command.option('--password-file <file>', 'file whose first line is the password (server.password_file; or UFDL_AGENT_SERVER_PASSWORD)');
  }
  return command;
}

/** A connected client and what error messages say about it. */
export interface Session {
  client: UfdlClient;
  /** The server URL as configured, or the URLs joined by commas (for messages). */
  url: string;
  username: string;
  config: EffectiveConfig;
}

/** Where a command connects and as whom: the effective configuration with the flags applied. */
export interface Target {
  config: EffectiveConfig;
  /** Validated by the loader: one http(s) URL or several, none twice. */
  urls: string[];
  username: string;
}

/** The configuration, the server's URLs and the user name; a bad `--server` is a usage error. */
export function resolveTarget(flags: ConnectFlags): Target {
  let config: EffectiveConfig;
  try {
    config = loadConfig({
      file: flags.config,
      flags: { 'server.url': flags.server, 'server.username': flags.user, 'server.password_file': flags.passwordFile },
    });
  } catch (err) {
    // A bad --server is a usage error, like any bad flag.
    const fromFlag = /^Configuration key 'server\.url' from flag: /;
    if (err instanceof ConfigError && fromFlag.test(err.message)) throw usageError(`--server: ${err.message.replace(fromFlag, '')}`);
    throw err;
  }
  const urls = (config.values['server.url'] as string[] | null) ?? [];
  const username = String(config.values['server.username'] ?? '');
  if (urls.length === 0) throw new ConfigError("Configuration key 'server.url' has no value: set the server's URL, e.g. http://127.0.0.1:8000");
  if (username === '') throw new ConfigError(`Configuration key 'server.username' from ${config.sources['server.username']}: expected a user name, got ""`);
  return { config, urls, username };
}

/** The token cache file of this server and user (the client's normalised URLs, so that `x` and `x/` share one). */
export function tokenCacheOf(target: Target): TokenCacheFile {
  return new TokenCacheFile(resolveServerUrls(target.urls), target.username);
}

/** Build the client; nothing is sent yet (the first call logs in, or uses the cached tokens). */
export function openSession(flags: ConnectFlags): Session {
  const target = resolveTarget(flags);
  const { config, urls, username } = target;
  const url = urls.join(', ');
  const password = passwordOf(flags, config);
  const timeoutMs = Math.max(1, Number(config.values['server.timeout'] ?? 30) * 1000);
  const cacheTokens = flags.tokenCache !== false && config.values['server.token_cache'] !== false;
  const client = new UfdlClient({
    serverUrl: urls,
    failbackAfterMs: Math.max(1, Number(config.values['server.failback_after'] ?? 60) * 1000),
    username,
    password,
    connectTimeoutMs: Math.min(timeoutMs, 5_000),
    responseTimeoutMs: timeoutMs,
    requestTimeoutMs: timeoutMs,
    transferIdleTimeoutMs: timeoutMs,
    // A person is waiting: fail fast when the server is down instead of backing off for a minute.
    retryAttempts: 2,
    retryTotalMs: 5_000,
    retryBaseDelayMs: 200,
    retryMaxDelayMs: 1_000,
    userAgent: `ufdl-agent-cli/${VERSION}`,
    jsonEngine: 'node-http',
    ...(cacheTokens ? { tokenCache: tokenCacheOf(target) } : {}),
  });
  return { client, url, username, config };
}

/** Open a session, run `body`, explain any failure in one line, close the client. */
export async function withSession<T>(flags: ConnectFlags, body: (session: Session) => Promise<T>): Promise<T> {
  const session = openSession(flags);
  try {
    return await body(session);
  } catch (err) {
    throw explain(err, session);
  } finally {
    session.client.close();
  }
}

function passwordOf(flags: ConnectFlags, config: EffectiveConfig): string {
  // An explicit --password-file wins over a password from the environment or the file.
  if (flags.passwordFile !== undefined) {
    try {
      const password = secretFromFile(flags.passwordFile);
      if (password === '') throw usageError(`--password-file: ${flags.passwordFile} is empty`);
      return password;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw usageError(`--password-file: cannot read ${flags.passwordFile}: ${(err as Error).message}`);
    }
  }
  const password = secretValue(config, 'server.password');
  if (password === undefined || password === '') {
    throw new ConfigError(
      "no password to log in with: set server.password_file in the configuration, UFDL_AGENT_SERVER_PASSWORD or UFDL_AGENT_SERVER_PASSWORD_FILE in the environment, or pass --password-file",
    );
  }
  return password;
}

/** Kinds that mean "the server answered and refused this request": its detail is the message. */
const REFUSALS = new Set(['not-found', 'bad-request', 'phase', 'taken', 'node-busy', 'not-started', 'duplicate-output', 'too-large', 'bad-node-id']);

/**
 * Run `call`; when the server refuses it (unknown object, bad value, wrong phase), fail with
 * `<what>: <the server's detail>` and status 1. Other failures pass through to {@link explain}.
 */
export async function about<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ClientError && REFUSALS.has(err.kind)) throw withCause(new CliError(EXIT.FAILURE, `${what}: ${err.detail}`), err);
    if (err instanceof ClientError && err.kind === 'forbidden') throw withCause(new CliError(EXIT.NOPERM, `${what}: permission denied: ${err.detail}`), err);
    throw err;
  }
}

/** One line and an exit status for any failure of a command that talks to the server. */
export function explain(err: unknown, session: Pick<Session, 'url' | 'username'>): unknown {
  if (!(err instanceof ClientError)) return err;
  const { url, username } = session;
  const call = `${err.method} ${err.path}`;
  const status = err.status === undefined ? '' : ` (${err.status})`;
  let result: CliError;
  switch (err.kind) {
    case 'auth':
      result = new CliError(EXIT.NOPERM, `login refused for user '${username}' at ${url}: ${err.detail} (check server.username and the password)`);
      break;
    case 'forbidden':
      result = new CliError(EXIT.NOPERM, `permission denied for user '${username}' (${call}): ${err.detail}`);
      break;
    case 'network':
    case 'timeout':
      result = new CliError(EXIT.UNAVAILABLE, `cannot reach the server at ${url}: ${err.detail}`);
      break;
    case 'aborted':
      result = new CliError(EXIT.FAILURE, `interrupted: ${call}`);
      break;
    case 'protocol':
      result = new CliError(EXIT.UNAVAILABLE, `the server at ${url} does not answer like a UFDL server (${call}): ${err.detail}`);
      break;
    case 'server':
      result = err.transient
        ? new CliError(EXIT.UNAVAILABLE, `the server at ${url} is unavailable${status}: ${err.detail}`)
        : new CliError(EXIT.FAILURE, `server error${status} on ${call}: ${err.detail}`);
      break;
    default:
      // A login route that does not exist: the URL points at something that is not a UFDL server.
      if (err.path.startsWith('/v1/auth/') && err.kind === 'not-found') {
        result = new CliError(EXIT.UNAVAILABLE, `no UFDL server at ${url} (${call}${status}): ${err.detail}`);
      } else {
        result = new CliError(EXIT.FAILURE, `${call}${status}: ${err.detail}`);
      }
  }
  return withCause(result, err);
}

function withCause(result: CliError, cause: unknown): CliError {
  if (process.env.UFDL_AGENT_DEBUG) process.stderr.write(`${(cause as Error)?.stack ?? String(cause)}\n`);
  return result;
}
