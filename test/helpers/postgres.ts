/**
 * A throw-away PostgreSQL cluster for tests (the cluster itself: bench/lib/pg-cluster.mjs, shared with
 * the benchmarks): initdb into a fresh temporary directory, started on a free loopback port as the
 * `postgres` user when we are root, stopped and removed by `stop()`. Host connections need the
 * password, as a real deployment's would; `url` carries it.
 */
import pg from 'pg';
import { afterAll, beforeAll, onTestFinished } from 'vitest';
import { startPgCluster, type PgCluster } from '../../bench/lib/pg-cluster.mjs';
import { PostgresDatabase } from '../../src/server/store/postgres/database.js';
import { migratePostgres } from '../../src/server/store/postgres/schema.js';

export { PG_BIN, PG_PASSWORD, PG_USER, startPgCluster, type PgCluster } from '../../bench/lib/pg-cluster.mjs';

/**
 * One cluster for the calling test file: started before its first test, stopped after its last.
 * `get()` returns it; each test makes its own database with `createDatabase`.
 */
export function usePgCluster(): { get(): PgCluster } {
  let cluster: PgCluster | undefined;
  beforeAll(async () => {
    cluster = await startPgCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);
  return {
    get() {
      if (!cluster) throw new Error('the PostgreSQL cluster is not running');
      return cluster;
    },
  };
}

/**
 * The store's handle on a new database of the cluster, migrated to the current schema; shut down
 * when the calling test finishes.
 */
export async function migratedHandle(cluster: { get(): PgCluster }, name: string): Promise<PostgresDatabase> {
  const url = await cluster.get().createDatabase(name);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  await migratePostgres(pool);
  await pool.end();
  const db = new PostgresDatabase({ connection: { connectionString: url } });
  onTestFinished(() => db.shutdown());
  return db;
}
