/**
 * The server's PostgreSQL store against a real PostgreSQL 15 (a throw-away cluster for this file):
 * the connection settings keep the password out of every message, migrations run once when several
 * replicas start together, and a database that could lose an acknowledged commit is refused. (Acquire
 * across replicas: replicas.test.ts, on real server processes.)
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseSettingsError, PASSWORD_ENV, openPool, poolConfig, redactDatabaseUrl } from '../../../src/server/store/postgres/connection.js';
import { openDatabase } from '../../../src/server/store/db.js';
import { migratePostgres, PG_SCHEMA_VERSION } from '../../../src/server/store/postgres/schema.js';
import { checkDurability } from '../../../src/server/store/postgres/transactions.js';
import { PG_PASSWORD, usePgCluster } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/temp-dir.js';

const cluster = usePgCluster();
const pools: pg.Pool[] = [];

async function freshDatabase(): Promise<string> {
  return cluster.get().createDatabase(`t_${randomUUID().replaceAll('-', '')}`);
}

/** A pool on `url` with the password taken from the environment, as a replica would open it. */
async function replica(url: string): Promise<pg.Pool> {
  const withoutPassword = new URL(url);
  withoutPassword.password = '';
  const pool = await openPool({ url: withoutPassword.toString() }, () => {}, { [PASSWORD_ENV]: PG_PASSWORD });
  pools.push(pool);
  return pool;
}

describe('the PostgreSQL connection settings', () => {
  it('take the password from a file, else the environment, and never show it', async () => {
    const dir = await tempDir('ufdl-pgconf-');
    const file = join(dir, 'password');
    await writeFile(file, 's3cret-from-file\n');
    const url = 'postgres://ufdl@db.example:6543/ufdl';
    expect(await poolConfig({ url, passwordFile: file }, { [PASSWORD_ENV]: 'from-env' })).toMatchObject({
      host: 'db.example',
      port: 6543,
      database: 'ufdl',
      user: 'ufdl',
      password: 's3cret-from-file',
    });
    expect((await poolConfig({ url }, { [PASSWORD_ENV]: 'from-env' })).password).toBe('from-env');
    expect(redactDatabaseUrl('postgres://ufdl:hunter2@db:5432/ufdl')).toBe('postgres://ufdl:***@db:5432/ufdl');
    const missing = await poolConfig({ url, passwordFile: join(dir, 'absent') }).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(DatabaseSettingsError);
    const wrongScheme = await poolConfig({ url: 'mysql://ufdl:hunter2@db/ufdl' }).catch((err: unknown) => err as Error);
    expect(wrongScheme).toBeInstanceOf(DatabaseSettingsError);
    expect(String((wrongScheme as Error).message)).not.toContain('hunter2');
    const noDatabase = await poolConfig({ url: 'postgres://ufdl:hunter2@db/' }).catch((err: unknown) => err as Error);
    expect((noDatabase as Error).message).toContain('postgres://ufdl:***@db/');
  });
});

describe('PostgreSQL migrations', () => {
  it('run once when five replicas start at the same moment, and not again', async () => {
    const url = await freshDatabase();
    const replicas = await Promise.all(Array.from({ length: 5 }, () => replica(url)));
    const results = await Promise.all(replicas.map((pool) => migratePostgres(pool)));
    expect(results.filter((r) => r.from === 0)).toHaveLength(1);
    expect(results.every((r) => r.to === PG_SCHEMA_VERSION)).toBe(true);
    const { rows } = await replicas[0]!.query<{ version: number }>('SELECT version FROM ufdl_schema ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
    const { rows: licences } = await replicas[0]!.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM licences');
    expect(licences[0]!.n).toBe(14);
    expect(await migratePostgres(replicas[1]!)).toEqual({ from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
  });

  it("hold the same tables, columns and indexes as SQLite's schema", async () => {
    // The two dialects are written side by side; this is what keeps them from drifting apart (a
    // SQLite migration without its PostgreSQL twin fails here).
    const sqlite = openDatabase(':memory:');
    const sqliteTables = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((t) => t.name);
    const sqliteColumns = sqliteTables.flatMap((table) => (sqlite.prepare(`PRAGMA table_info("${table}")`).all() as { name: string }[]).map((c) => `${table}.${c.name}`));
    const sqliteIndexes = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all() as { name: string }[]).map((i) => i.name);
    sqlite.close();

    const pool = await replica(await freshDatabase());
    await migratePostgres(pool);
    const { rows: columns } = await pool.query<{ table_name: string; column_name: string }>(
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'ufdl_schema'",
    );
    const { rows: indexes } = await pool.query<{ indexname: string }>(
      "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
    );
    const sorted = (names: string[]) => [...new Set(names)].sort();
    expect(sorted(columns.map((c) => `${c.table_name}.${c.column_name}`))).toEqual(sorted(sqliteColumns));
    expect(sorted(indexes.map((i) => i.indexname))).toEqual(sorted(sqliteIndexes));
  });

  it('refuse a database written by a newer version', async () => {
    const pool = await replica(await freshDatabase());
    await migratePostgres(pool);
    await pool.query('INSERT INTO ufdl_schema (version) VALUES ($1)', [PG_SCHEMA_VERSION + 1]);
    await expect(migratePostgres(pool)).rejects.toThrow(/newer ufdl-agent/);
  });
});

describe('PostgreSQL durability', () => {
  it('refuses a database whose commits are acknowledged before they are on disk', async () => {
    const url = await freshDatabase();
    const pool = await replica(url);
    await expect(checkDurability(pool)).resolves.toBeUndefined();
    const database = new URL(url).pathname.slice(1);
    await pool.query(`ALTER DATABASE "${database}" SET synchronous_commit = off`);
    const fresh = await replica(url);
    await expect(checkDurability(fresh)).rejects.toThrow(/synchronous_commit = off/);
  });
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
});
