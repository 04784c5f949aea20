/**
 * Open the server's store: SQLite in the data directory (the default), or PostgreSQL when
 * `databaseUrl` is set. Either way the caller gets a `Db` for the store's modules, a durability barrier
 * for group commit, and a way to close; on PostgreSQL also the pool that relays hub events between
 * replicas and elects the one that sweeps for lost nodes.
 */
import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ResolvedServerOptions } from '../options.js';
import { startCheckpointer } from './checkpointer.js';
import { openDatabase, type Db } from './db.js';
import { DurableBarrier, walBarrier } from './durability.js';
import { openPool, poolConfig, redactDatabaseUrl, type DatabaseSettings } from './postgres/connection.js';
import { PostgresDatabase } from './postgres/database.js';
import { DatabaseUnreachableError } from './postgres/statement-thread.js';
import { migratePostgres } from './postgres/schema.js';
import { checkDurability } from './postgres/transactions.js';
import { postgresTextSearches, sqliteTextSearches, type TextSearches } from './text-searches.js';
import { batchWritesPerTurn, commitTurnBatch } from './turn-batch.js';

export interface OpenStore {
  kind: 'sqlite' | 'postgres';
  db: Db;
  barrier: DurableBarrier;
  /** Lists whose filter searches text: off the event loop (SQLite), under a time limit (both). */
  searches: TextSearches;
  /** PostgreSQL only: connections for LISTEN/NOTIFY and the advisory-lock leadership. */
  pool: pg.Pool | undefined;
  /** Where the state lives, fit for a log line (a URL's password is never shown). */
  location: string;
  /** Make every commit durable, stop background work, close the database. */
  close(): Promise<void>;
}

export async function openStore(options: ResolvedServerOptions, log: Logger): Promise<OpenStore> {
  if (options.databaseUrl === undefined) return openSqliteStore(options, log);
  return openPostgresStore({ url: options.databaseUrl, passwordFile: options.databasePasswordFile }, options.searchTimeLimitSeconds, log);
}

async function openSqliteStore(options: ResolvedServerOptions, log: Logger): Promise<OpenStore> {
  const file = join(options.dataDir, 'ufdl.sqlite3');
  const db = openDatabase(file);
  batchWritesPerTurn(db);
  const durability = walBarrier(db, log);
  // Group commit: the migration and the seed are made durable before the first request is taken.
  const checkpointer = startCheckpointer(db, log);
  const searches = sqliteTextSearches(db, log, options.searchTimeLimitSeconds);
  return {
    kind: 'sqlite',
    db,
    barrier: durability.barrier,
    searches,
    pool: undefined,
    location: file,
    async close() {
      await searches.close();
      await checkpointer.close();
      try {
        await durability.close();
      } catch (err) {
        log.error({ err }, 'the last disk sync before closing the database failed');
      }
      // A batch without a change needed no sync, and may still be open.
      commitTurnBatch(db);
      db.close();
    },
  };
}

/** PostgreSQL commits are durable when `COMMIT` returns (checked at start): nothing to wait for. */
const COMMITTED_IS_DURABLE = { commitCount: () => 0, flush: async () => {} };

async function openPostgresStore(settings: DatabaseSettings, searchTimeLimitSeconds: number, log: Logger): Promise<OpenStore> {
  const location = redactDatabaseUrl(settings.url);
  // A few connections beside the store's own: one listens, one publishes hub events, one may hold
  // the sweep's leadership lock, one migrates at start.
  const pool = await openPool({ ...settings, poolSize: 4 }, (err) => log.warn({ err: err.message }, 'an idle PostgreSQL connection failed; it will be replaced'));
  let database: PostgresDatabase | undefined;
  try {
    await checkDurability(pool);
    const migrated = await migratePostgres(pool);
    if (migrated.from !== migrated.to) log.info({ from: migrated.from, to: migrated.to, database: location }, `migrated the PostgreSQL schema from version ${migrated.from} to ${migrated.to}`);
    const { types: _types, max: _max, ...connection } = await poolConfig(settings);
    database = new PostgresDatabase({ connection: connection as pg.ClientConfig });
    // The first statement connects, so a database that refuses us fails the start, not a request.
    database.exec('SELECT 1');
  } catch (err) {
    await database?.shutdown();
    await pool.end().catch(() => {});
    throw isConnectionFailure(err) ? new DatabaseUnreachableError(`${location}: ${(err as Error).message}`, { cause: err }) : err;
  }
  const db = database.asDb();
  const opened = database;
  return {
    kind: 'postgres',
    db,
    barrier: new DurableBarrier(COMMITTED_IS_DURABLE, { durableNow: true }),
    searches: postgresTextSearches(db, searchTimeLimitSeconds),
    pool,
    location,
    async close() {
      await opened.shutdown();
      await pool.end().catch(() => {});
    },
  };
}

/** A connection to PostgreSQL that failed or was refused: network errors, authentication, no such database. */
function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  // pg's own transport failures carry no code: a connection that timed out or was cut before it was ready.
  if (code === undefined && err instanceof Error && /^Connection terminated/.test(err.message)) return true;
  // Node's socket errors, and PostgreSQL's connection (08…), authentication (28…) and catalog (3D000) classes.
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || /^(08|28)/.test(code) || code === '3D000');
}
