/**
 * The server's PostgreSQL store against a real PostgreSQL 15 (a throw-away cluster for this file):
 * the connection settings keep the password out of every message, migrations run once when several
 * replicas start together, a database that could lose an acknowledged commit is refused, and acquire
 * is atomic across replicas.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isUfdlError } from '../../../src/protocol/errors.js';
import { DatabaseSettingsError, PASSWORD_ENV, openPool, poolConfig, redactDatabaseUrl } from '../../../src/server/store/postgres/connection.js';
import { openDatabase } from '../../../src/server/store/db.js';
import { migratePostgres, PG_SCHEMA_VERSION } from '../../../src/server/store/postgres/schema.js';
import { acquireJobPostgres, checkDurability } from '../../../src/server/store/postgres/transactions.js';
import { PG_PASSWORD, usePgCluster } from '../../helpers/postgres.js';
import { until } from '../../helpers/wait.js';

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
    const dir = await mkdtemp(join(tmpdir(), 'ufdl-pgconf-'));
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

describe('acquire on PostgreSQL', () => {
  async function seed(pool: pg.Pool, nodes: number): Promise<{ job: number; nodes: number[] }> {
    const now = new Date().toISOString();
    const user = (await pool.query<{ pk: number }>("INSERT INTO users (username, password_hash, date_joined) VALUES ('worker', 'x', $1) RETURNING pk", [now])).rows[0]!.pk;
    const template = (
      await pool.query<{ pk: number }>("INSERT INTO templates (name, version, type, executor_class, creation_time) VALUES ('t', 1, 'Run', 'ufdl_agent.Shell', $1) RETURNING pk", [now])
    ).rows[0]!.pk;
    const job = (await pool.query<{ pk: number }>('INSERT INTO jobs (template, creator, creation_time) VALUES ($1, $2, $3) RETURNING pk', [template, user, now])).rows[0]!.pk;
    const pks: number[] = [];
    for (let i = 0; i < nodes; i++) {
      pks.push((await pool.query<{ pk: number }>("INSERT INTO nodes (ip, \"index\", cpu_mem, owner) VALUES ('10.0.0.1', $1, 1024, $2) RETURNING pk", [i, user])).rows[0]!.pk);
    }
    return { job, nodes: pks };
  }

  it('gives the job to exactly one of 20 nodes acquiring it at once over 3 replicas', async () => {
    const url = await freshDatabase();
    const replicas = await Promise.all(Array.from({ length: 3 }, () => replica(url)));
    await migratePostgres(replicas[0]!);
    const { job, nodes } = await seed(replicas[0]!, 20);
    // Hold every acquirer at its first write until all 20 have read the job, so they truly overlap:
    // a table lock that lets plain reads through but no row lock and no write.
    const observer = await replica(url);
    const gate = await replicas[0]!.connect();
    await gate.query('BEGIN');
    await gate.query('LOCK TABLE jobs IN EXCLUSIVE MODE');
    const racing = Promise.allSettled(nodes.map((node, i) => acquireJobPostgres(replicas[i % 3]!, job, node)));
    try {
      await until(async () => {
        // Not on the gate's connection: inside a transaction, pg_stat_activity is a snapshot.
        const { rows } = await observer.query<{ n: number }>("SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()");
        return rows[0]!.n === nodes.length;
      });
    } finally {
      await gate.query('COMMIT');
      gate.release();
    }
    const outcomes = await racing;
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    expect(won).toHaveLength(1);
    expect(refused.every((err) => isUfdlError(err) && err.code === 'UFDL_ERR_JOB_ACQUIRED')).toBe(true);
    const winner = (won[0] as PromiseFulfilledResult<{ node: number | null }>).value.node;
    const { rows } = await replicas[1]!.query<{ node: number }>('SELECT node FROM jobs WHERE pk = $1', [job]);
    expect(rows[0]!.node).toBe(winner);
    // The winner acquiring again is a no-op; a job that is not there is a 404.
    await expect(acquireJobPostgres(replicas[2]!, job, winner!)).resolves.toMatchObject({ node: winner });
    await expect(acquireJobPostgres(replicas[2]!, job + 1000, winner!)).rejects.toMatchObject({ code: 'UFDL_ERR_REQ_NOT_FOUND' });
  });
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
});
