/**
 * Which store the server under test runs on. The API suite runs twice (vitest.config.ts): on SQLite,
 * and with `UFDL_TEST_STORE=postgres` on PostgreSQL, in a throw-away cluster started once for the run
 * (`pg-global-setup.ts`). The same test files, the same assertions: only the server's database differs.
 *
 * On PostgreSQL every data directory gets its own database, made on first use (a copy of the
 * migrated template, `pg-global-setup.ts`) and reused for the same directory, so a test that stops a
 * server and starts another on the same directory finds its state, as it would on SQLite.
 */
import pg from 'pg';
import { inject } from 'vitest';

export type StoreKind = 'sqlite' | 'postgres';

export const STORE_UNDER_TEST: StoreKind = process.env.UFDL_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The throw-away cluster's maintenance database URL (with its password). */
    pgClusterUrl: string;
    /** The migrated database in it that every test database is copied from. */
    pgTemplate: string;
  }
}

let admin: pg.Pool | undefined;
/** Drops go on a connection of their own, so that no test's create waits behind them. */
let dropper: pg.Pool | undefined;
const databases = new Map<string, string>();
let created = 0;

function adminPool(): pg.Pool {
  admin ??= new pg.Pool({ connectionString: inject('pgClusterUrl'), max: 2 });
  return admin;
}

/** The database URL for a server on `dataDir`: none on SQLite; on PostgreSQL, the directory's own database. */
export async function databaseUrlFor(dataDir: string): Promise<string | undefined> {
  if (STORE_UNDER_TEST === 'sqlite') return undefined;
  const known = databases.get(dataDir);
  if (known !== undefined) return known;
  const name = `t${process.pid}_${++created}`;
  await adminPool().query(`CREATE DATABASE ${name} TEMPLATE ${inject('pgTemplate')}`);
  const url = new URL(inject('pgClusterUrl'));
  url.pathname = `/${name}`;
  databases.set(dataDir, url.toString());
  return url.toString();
}

/**
 * Drop the database of `dataDir` (when its test is done with it); nothing on SQLite. In the
 * background: the test does not wait for it (the cluster goes at the end of the run anyway), and a
 * drop that fails only leaves a database behind in it.
 */
export function dropDatabaseFor(dataDir: string): void {
  const url = databases.get(dataDir);
  if (url === undefined) return;
  databases.delete(dataDir);
  const name = new URL(url).pathname.slice(1);
  dropper ??= new pg.Pool({ connectionString: inject('pgClusterUrl'), max: 1 });
  dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
}
