/**
 * `ufdl-agent migrate-store`: copy a SQLite server's data into an empty PostgreSQL database, and
 * prove the copy by counts and checksums.
 *
 * The PostgreSQL schema holds the same tables and columns as SQLite's latest (`schema.ts`), so the
 * copy is row for row with the pks kept (jobs refer to templates, nodes and users by pk; agents and
 * scripts know jobs by pk). Each table's identity is then moved past its largest pk. Everything is one
 * PostgreSQL transaction: a failed copy leaves the target as empty as it was. The checksum of a table
 * is a SHA-256 over its rows in pk order, each row's columns in name order, values in one canonical
 * form (numbers as decimal text, bytes as hex, NULL distinct from every string), computed from what
 * each database returns, so a value either database changed on the way shows as a mismatch.
 *
 * The output files are not in the database: the output store directory (`serve.data_dir`'s `blobs/`)
 * is copied or mounted as it is, since outputs are content-addressed (docs/OPERATIONS.md).
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { SCHEMA_VERSION } from '../db.js';
import { inTransaction } from './transactions.js';

/** Tables in an order that satisfies every foreign key, with the columns that order their rows. */
export const COPIED_TABLES: readonly { name: string; orderBy: string; identity: boolean }[] = [
  { name: 'settings', orderBy: 'key', identity: false },
  { name: 'users', orderBy: 'pk', identity: true },
  { name: 'hardware', orderBy: 'pk', identity: true },
  { name: 'nodes', orderBy: 'pk', identity: true },
  { name: 'licences', orderBy: 'pk', identity: false },
  { name: 'templates', orderBy: 'pk', identity: true },
  { name: 'jobs', orderBy: 'pk', identity: true },
  { name: 'blobs', orderBy: 'sha256', identity: false },
  { name: 'outputs', orderBy: 'pk', identity: true },
  { name: 'job_waits', orderBy: 'job, node', identity: false },
  { name: 'progress_points', orderBy: 'pk', identity: true },
];

export interface TableReport {
  table: string;
  rows: number;
  checksum: string;
}

export class StoreCopyError extends Error {
  override name = 'StoreCopyError';
}

type Row = Record<string, unknown>;

function canonical(value: unknown): string {
  if (value === null || value === undefined) return '\u0000null';
  if (Buffer.isBuffer(value)) return `\u0000hex:${value.toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isInteger(value) ? value.toString() : value.toPrecision(17).replace(/\.?0+$/, '');
  return `s:${String(value)}`;
}

function checksumOf(rows: readonly Row[]): string {
  const hash = createHash('sha256');
  for (const row of rows) {
    for (const column of Object.keys(row).sort()) hash.update(`${column}=${canonical(row[column])}\u0001`);
    hash.update('\u0002');
  }
  return hash.digest('hex');
}

/** Counts and checksums of every copied table in the SQLite database. */
export function sqliteReport(db: Database.Database): TableReport[] {
  return COPIED_TABLES.map(({ name, orderBy }) => {
    const rows = db.prepare(`SELECT * FROM ${name} ORDER BY ${orderBy}`).all() as Row[];
    return { table: name, rows: rows.length, checksum: checksumOf(rows) };
  });
}

/** Counts and checksums of every copied table in the PostgreSQL database. */
export async function postgresReport(client: pg.Pool | pg.PoolClient): Promise<TableReport[]> {
  const reports: TableReport[] = [];
  for (const { name, orderBy } of COPIED_TABLES) {
    const { rows } = await client.query<Row>(`SELECT * FROM ${name} ORDER BY ${orderBy}`);
    reports.push({ table: name, rows: rows.length, checksum: checksumOf(rows) });
  }
  return reports;
}

/** Open a SQLite server database for reading; refuses one of another schema version. */
export function openSqliteSource(file: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new StoreCopyError(`cannot open the SQLite database ${file}: ${(err as Error).message}`);
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== SCHEMA_VERSION) {
    db.close();
    throw new StoreCopyError(
      `the SQLite database ${file} has schema ${version}, this version copies schema ${SCHEMA_VERSION}: start the server of this version on it once (it migrates), stop it, then copy`,
    );
  }
  return db;
}

const BATCH_ROWS = 500;

/**
 * Copy every table from `source` into the migrated, empty PostgreSQL database behind `pool`, in one
 * transaction, and compare the counts and checksums of both sides before committing. Returns the
 * report (equal on both sides). Throws {@link StoreCopyError} when the target holds data or the
 * copy does not match.
 */
export async function copySqliteToPostgres(source: Database.Database, pool: pg.Pool): Promise<TableReport[]> {
  const expected = sqliteReport(source);
  return inTransaction(pool, async (client) => {
    for (const table of ['users', 'nodes', 'templates', 'jobs', 'outputs', 'hardware', 'settings']) {
      const { rows } = await client.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${table}`);
      if (rows[0]!.n > 0) throw new StoreCopyError(`the PostgreSQL database is not empty (${table} has ${rows[0]!.n} rows); copy into a new database`);
    }
    // The licences come with the schema (the same rows as SQLite's); they are replaced like the rest.
    await client.query('DELETE FROM licences');
    for (const { name, orderBy, identity } of COPIED_TABLES) {
      await copyTable(source, client, name, orderBy, identity);
    }
    const actual = await postgresReport(client);
    const mismatches = actual.filter((report, i) => report.rows !== expected[i]!.rows || report.checksum !== expected[i]!.checksum);
    if (mismatches.length > 0) {
      throw new StoreCopyError(`the copy does not match its source in ${mismatches.map((m) => m.table).join(', ')}; nothing was kept`);
    }
    return actual;
  });
}

async function copyTable(source: Database.Database, client: pg.PoolClient, name: string, orderBy: string, identity: boolean): Promise<void> {
  const rows = source.prepare(`SELECT * FROM ${name} ORDER BY ${orderBy}`).all() as Row[];
  if (rows.length > 0) {
    const columns = Object.keys(rows[0]!);
    const columnList = columns.map((c) => `"${c}"`).join(', ');
    for (let start = 0; start < rows.length; start += BATCH_ROWS) {
      const batch = rows.slice(start, start + BATCH_ROWS);
      const values: unknown[] = [];
      const tuples = batch.map((row) => `(${columns.map((column) => `$${values.push(row[column])}`).join(', ')})`);
      const overriding = identity ? ' OVERRIDING SYSTEM VALUE' : '';
      await client.query(`INSERT INTO ${name} (${columnList})${overriding} VALUES ${tuples.join(', ')}`, values);
    }
  }
  if (identity) {
    await client.query(`SELECT setval(pg_get_serial_sequence('${name}', 'pk'), COALESCE((SELECT MAX(pk) FROM ${name}), 0) + 1, false)`);
  }
}
