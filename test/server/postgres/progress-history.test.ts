/**
 * The progress history's cases (support/progress-history-cases.ts) on a real PostgreSQL 15: the
 * multi-row insert, the thinning and the cascade as PostgreSQL reads them.
 */
import pg from 'pg';
import { afterAll } from 'vitest';
import type { Db } from '../../../src/server/store/db.js';
import { PostgresDatabase } from '../../../src/server/store/postgres/database.js';
import { migratePostgres } from '../../../src/server/store/postgres/schema.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { progressHistoryCases } from '../support/progress-history-cases.js';

const cluster = usePgCluster();
const handles: PostgresDatabase[] = [];
let databases = 0;

afterAll(async () => {
  await Promise.all(handles.map((db) => db.shutdown()));
});

progressHistoryCases('PostgreSQL', async (): Promise<Db> => {
  const url = await cluster.get().createDatabase(`history_${++databases}`);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  await migratePostgres(pool);
  await pool.end();
  const db = new PostgresDatabase({ connection: { connectionString: url } });
  handles.push(db);
  return db.asDb();
});
