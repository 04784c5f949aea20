/**
 * Connecting to the server's PostgreSQL database (`serve.database_url`). The URL names the host,
 * port, database and user; the password comes from a file (`serve.database_password_file`, the way
 * container secrets are mounted) or the environment (`UFDL_DATABASE_PASSWORD`), so it never sits in a
 * configuration file, a command line or a process listing. A password written into the URL itself is
 * accepted but never shown: every URL that reaches a log or an error message goes through
 * {@link redactDatabaseUrl}, and the pool is configured field by field, never from the URL string.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';

export const PASSWORD_ENV = 'UFDL_DATABASE_PASSWORD';
/** How long connecting to PostgreSQL may take, the TLS and authentication exchange included. */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface DatabaseSettings {
  /** `postgres://user@host:port/database` (`postgresql://` too). */
  url: string;
  /** A file whose content (one trailing newline dropped) is the password. */
  passwordFile?: string | undefined;
  /** Connections this server keeps at most. @default 10 */
  poolSize?: number | undefined;
}

/** A configuration problem with the database settings; its message never holds the password. */
export class DatabaseSettingsError extends Error {
  override name = 'DatabaseSettingsError';
}

/** The URL with its password (if any) replaced by `***`, fit for logs and messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    // Unparseable: show nothing of what may follow a scheme's `//user:`.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/**
 * The pool settings for `settings`: host, port, database and user from the URL, the password from
 * the file, else the environment, else the URL. Throws {@link DatabaseSettingsError} naming what is
 * wrong (never the password).
 */
export async function poolConfig(settings: DatabaseSettings, env: NodeJS.ProcessEnv = process.env): Promise<pg.PoolConfig> {
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    throw new DatabaseSettingsError(`serve.database_url is not a URL: ${redactDatabaseUrl(settings.url)}`);
  }
  if (!isPostgresUrl(settings.url)) {
    throw new DatabaseSettingsError(`serve.database_url must start with postgres:// or postgresql://, not ${url.protocol}//`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw new DatabaseSettingsError(`serve.database_url must name one database (postgres://user@host/database): ${redactDatabaseUrl(settings.url)}`);
  }
  const port = url.port === '' ? 5432 : Number(url.port);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost',
    port,
    database,
    user: decodeURIComponent(url.username) || undefined,
    password: await passwordOf(settings, url, env),
    max: settings.poolSize ?? 10,
    application_name: 'ufdl-agent',
    // A host that takes the connection but never answers (a firewall that drops packets, a stuck
    // server) must fail a start, a reconnect or a close in seconds, not after the kernel's minutes.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // And a connection that dies silently under a long LISTEN is noticed by the kernel's probes.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Big integers (pks, sizes) as numbers: every value the server stores fits in 2^53.
    types: { getTypeParser: typeParser },
  } as pg.PoolConfig;
}

const INT8_OID = 20;

function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID) return (value: string) => Number(value);
  return pg.types.getTypeParser(oid, format as 'text');
}

async function passwordOf(settings: DatabaseSettings, url: URL, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (settings.passwordFile !== undefined) {
    try {
      return (await readFile(settings.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new DatabaseSettingsError(`cannot read serve.database_password_file ${settings.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return url.password === '' ? undefined : decodeURIComponent(url.password);
}

/**
 * `text` with `values` as a query that fails after `timeoutMs` without an answer (pg's
 * `query_timeout`): for the connections that stay open for long (the relay's listener, the leader's
 * lock), where a network gone silent would otherwise hold the caller until the kernel gives up.
 */
export function timedQuery(text: string, values: unknown[], timeoutMs: number): pg.QueryConfig {
  // pg reads `query_timeout` from a query's config, though its types do not declare it there.
  return { text, values, query_timeout: timeoutMs } as pg.QueryConfig;
}

/** A pool on `settings`; connection errors of idle clients are reported to `onError`, not thrown. */
export async function openPool(settings: DatabaseSettings, onError: (err: Error) => void, env: NodeJS.ProcessEnv = process.env): Promise<pg.Pool> {
  const pool = new pg.Pool(await poolConfig(settings, env));
  pool.on('error', onError);
  return pool;
}
