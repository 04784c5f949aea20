/**
 * `cachedStatement(db, sql).get/all` for the hot reads (the caller's user and node, the job row),
 * with each row built by a function made for the statement's columns instead of by the driver.
 *
 * better-sqlite3 builds a row object one property at a time from the column's name (a string made
 * and looked up anew for every column of every row: V8's slow path for adding properties). For the
 * 20-column job row that took half of the read's CPU. In raw mode the driver hands over an array,
 * and a function returning an object literal with the statement's column names builds every row
 * with one shape — the same object, key for key (a later column of the same name wins, as in the
 * driver). On PostgreSQL the store's statement builds the rows itself, and is used as it is.
 */
import type { Statement } from 'better-sqlite3';
import { cachedStatement, type Db } from './db.js';
import { dialectOf } from './postgres/database.js';

export interface RowReader<T> {
  get(...params: unknown[]): T | undefined;
  all(...params: unknown[]): T[];
}

const readers = new WeakMap<Db, Map<string, RowReader<unknown>>>();

/** The reader of `sql` on `db`, compiled once per database (like `cachedStatement`). */
export function cachedRows<T>(db: Db, sql: string): RowReader<T> {
  let bySql = readers.get(db);
  if (!bySql) {
    bySql = new Map();
    readers.set(db, bySql);
  }
  let reader = bySql.get(sql) as RowReader<T> | undefined;
  if (!reader) {
    reader = makeReader<T>(db, sql);
    bySql.set(sql, reader as RowReader<unknown>);
  }
  return reader;
}

function makeReader<T>(db: Db, sql: string): RowReader<T> {
  if (dialectOf(db) === 'postgres') return cachedStatement(db, sql) as unknown as RowReader<T>;
  // Its own statement: the shared one's mode must not change (see cachedStatement).
  const statement: Statement = db.prepare(sql).raw(true);
  const build = objectBuilder<T>(statement.columns().map((c, i) => [c.name, i]));
  return {
    get: (...params) => {
      const row = statement.get(...params) as unknown[] | undefined;
      return row === undefined ? undefined : build(row);
    },
    all: (...params) => (statement.all(...params) as unknown[][]).map(build),
  };
}

/**
 * A function that builds an object literal with the given keys, each read from the source row at its
 * index (a raw row) or key (an object row): one shape for every object it builds, where assigning
 * key by key takes V8's slow path. The keys are our own column names (quoted as JSON string literals).
 */
export function objectBuilder<T>(fields: readonly (readonly [key: string, from: number | string])[]): (row: SourceRow) => T {
  const literal = fields.map(([key, from]) => `${JSON.stringify(key)}: r[${JSON.stringify(from)}]`).join(', ');
  return new Function('r', `return { ${literal} };`) as (row: SourceRow) => T;
}

type SourceRow = readonly unknown[] | Readonly<Record<string, unknown>>;
