import { defaultMaxConnections } from './connection-limits.js';

/**
 * Server options in three layers (docs/ARCHITECTURE.md, Conventions 7): what callers may pass, the defaults, and the
 * resolved, frozen form every module reads. Units are in the names.
 */

export interface ServerOptions {
  /** Directory holding the database, the output store and the admin password file. Created if missing. */
  dataDir: string;
  /**
   * `postgres://user@host:port/database`: keep the server's state in this PostgreSQL database instead
   * of SQLite in `dataDir` (which still holds outputs and live logs, and must then be shared by every
   * replica). Unset: SQLite.
   */
  databaseUrl?: string;
  /** A file holding the database password (else `UFDL_DATABASE_PASSWORD`, else the URL's). */
  databasePasswordFile?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 8000 (0 picks a free port) */
  port?: number;
  /** Strict-reference mode: wake-up, lost-node recovery, capability discovery, live logs and the dashboard are off. @default true */
  extensions?: boolean;
  /** Largest output upload. @default 8 GiB */
  maxOutputBytes?: number;
  /** Largest JSON body. @default 1 MiB */
  maxBodyBytes?: number;
  /** @default 300 (5 minutes, as the reference) */
  accessTokenSeconds?: number;
  /** @default 28800 (8 hours, as the reference) */
  refreshTokenSeconds?: number;
  /** Lost-node recovery: abort jobs held by a node unseen this long. @default 600 */
  lostAfterSeconds?: number;
  /** How often the sweeper looks for lost nodes. @default 15 */
  sweepIntervalSeconds?: number;
  /** Live logs: the largest cap (`max_bytes`) an agent may begin a job's log with. @default 256 MiB */
  maxLiveLogBytes?: number;
  /** Seconds in which a request's headers must arrive. @default 20 */
  headersTimeoutSeconds?: number;
  /** Seconds without a byte either way after which a connection is closed. @default 30 */
  idleTimeoutSeconds?: number;
  /** Connections one client address (IPv6: one /64) may hold at once; 0 = no cap. @default 256 */
  maxConnectionsPerAddress?: number;
  /** Connections the server holds at once; 0 = no cap. @default 80 % of the open-files limit */
  maxConnections?: number;
  /**
   * Distinct filters (less the pks they exclude) one user's `X-UFDL-Wait` list requests may wait on at
   * once; together they may also ask no more than one list filter may. A request beyond it is
   * answered at once. 0 = no bound. @default 16
   */
  maxWaitFiltersPerUser?: number;
  /**
   * Seconds a list whose filter searches text (`contains`, a case-insensitive `exact`) may take,
   * waiting for other searches included; past it the answer is 503 and the search is abandoned.
   * @default 10
   */
  searchTimeLimitSeconds?: number;
  /** Failed logins of one user name that cost nothing; each further one makes the next attempt wait (an address gets 4×); 0: no throttling. @default 5 */
  loginFailuresAllowed?: number;
  /**
   * Who may register and act as a node: `'any'` user, as the reference, or only `'workers'` (users
   * with the worker flag, and admins). Always `'any'` in strict-reference mode. @default 'any'
   */
  nodeActions?: 'any' | 'workers';
  /**
   * A secret a Prometheus scraper sends as `Authorization: Bearer <secret>` to read `/metrics`; an
   * admin's access token works too. Unset: `/metrics` is open, as probes and scrapers expect.
   */
  metricsToken?: string;
  /** Let web-socket watchers connect without a token, as the reference does. @default false */
  allowAnonymousWebsocket?: boolean;
  /** Admin created on first start. Password: from here, else generated and written to DIR/admin-password. */
  adminUser?: string;
  adminPassword?: string;
  /** pino level, or false to silence. @default 'info' */
  logLevel?: string | false;
}

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  extensions: true,
  maxOutputBytes: 8 * 1024 ** 3,
  maxBodyBytes: 1024 ** 2,
  accessTokenSeconds: 300,
  refreshTokenSeconds: 8 * 3600,
  lostAfterSeconds: 600,
  sweepIntervalSeconds: 15,
  maxLiveLogBytes: 256 * 1024 ** 2,
  allowAnonymousWebsocket: false,
  loginFailuresAllowed: 5,
  nodeActions: 'any' as 'any' | 'workers',
  headersTimeoutSeconds: 20,
  idleTimeoutSeconds: 30,
  maxConnectionsPerAddress: 256,
  maxConnections: defaultMaxConnections(),
  maxWaitFiltersPerUser: 16,
  searchTimeLimitSeconds: 10,
  adminUser: 'admin',
  logLevel: 'info' as string | false,
} as const;

export type ResolvedServerOptions = Readonly<
  Required<Omit<ServerOptions, 'adminPassword' | 'metricsToken' | 'databaseUrl' | 'databasePasswordFile'>> & {
    adminPassword: string | undefined;
    metricsToken: string | undefined;
    databaseUrl: string | undefined;
    databasePasswordFile: string | undefined;
  }
>;

export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  const resolved = {
    ...SERVER_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    adminPassword: options.adminPassword,
    metricsToken: options.metricsToken === '' ? undefined : options.metricsToken,
    databaseUrl: options.databaseUrl === '' ? undefined : options.databaseUrl,
    databasePasswordFile: options.databasePasswordFile === '' ? undefined : options.databasePasswordFile,
  } as ResolvedServerOptions;
  const positive = [
    'maxOutputBytes',
    'maxBodyBytes',
    'accessTokenSeconds',
    'refreshTokenSeconds',
    'lostAfterSeconds',
    'sweepIntervalSeconds',
    'headersTimeoutSeconds',
    'idleTimeoutSeconds',
    'maxLiveLogBytes',
    'searchTimeLimitSeconds',
  ] as const;
  for (const key of positive) {
    const value = resolved[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new TypeError(`Server option '${key}' must be a positive number, got ${JSON.stringify(value)}`);
    }
  }
  if (resolved.nodeActions !== 'any' && resolved.nodeActions !== 'workers') {
    throw new TypeError(`Server option 'nodeActions' must be 'any' or 'workers', got ${JSON.stringify(resolved.nodeActions)}`);
  }
  for (const key of ['maxConnectionsPerAddress', 'maxConnections', 'maxWaitFiltersPerUser', 'loginFailuresAllowed'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 0) {
      throw new TypeError(`Server option '${key}' must be a whole number (0: no cap), got ${JSON.stringify(resolved[key])}`);
    }
  }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new TypeError(`Server option 'port' must be an integer in [0, 65535], got ${JSON.stringify(resolved.port)}`);
  }
  // Strict-reference mode: every user may act as a node, as on the reference.
  return Object.freeze(resolved.extensions ? resolved : { ...resolved, nodeActions: 'any' });
}
