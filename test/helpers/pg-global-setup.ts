/**
 * Global set-up of the PostgreSQL project (vitest.config.ts): one throw-away cluster for the whole
 * run, stopped when the run ends; each server under test gets its own database in it
 * (`store-under-test.ts`), copied from a template migrated once here. A server's start then finds its
 * schema current instead of applying every migration (≈ 150 ms a server, hundreds of servers a run);
 * the migrations themselves are tested on databases of their own (test/server/postgres/).
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migratePostgres } from '../../src/server/store/postgres/schema.js';
import { startPgCluster } from './postgres.js';

/** The migrated database every test database is copied from. */
const TEMPLATE = 'ufdl_migrated';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startPgCluster();
  const created = await cluster.createDatabase(TEMPLATE);
  const pool = new pg.Pool({ connectionString: created, max: 1 });
  try {
    await migratePostgres(pool);
  } finally {
    // A template must have no connection left when it is copied.
    await pool.end();
  }
  project.provide('pgClusterUrl', cluster.url);
  project.provide('pgTemplate', TEMPLATE);
  return () => cluster.stop();
}
