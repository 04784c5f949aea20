/**
 * The store's database handle on PostgreSQL: the part of better-sqlite3's `Database` the store uses
 * (`prepare` with `get`/`all`/`run`, `transaction`, `exec`), over one connection held by a
 * {@link StatementThread}. The store's modules take a `Db` and cannot tell the two apart, which is
 * what keeps every transition's logic written once.
 *
 * Semantics kept from SQLite:
 * - **One writer at a time.** Every transaction takes a transaction-level advisory lock first
 *   ({@link WRITER_LOCK}), as SQLite's `BEGIN IMMEDIATE` takes the database's write lock, across all
 *   replicas. A transition's checks therefore read what no other transition can change before it
 *   commits (an acquire race on three replicas has one winner), and a workflow child's transition
 *   sees its siblings' committed state when it decides the parent's. A replica that dies mid-transaction
 *   loses its connection, and PostgreSQL rolls the transaction back and frees the lock.
 * - **Rows as SQLite gives them.** Booleans as 0/1, `bytea` as Buffers, big integers as numbers; an
 *   `INSERT` answers its `pk` as `lastInsertRowid`.
 * - **Nested transactions** are savepoints, as in better-sqlite3.
 */
import type { Db } from '../db.js';
import { translateToPostgres, type TranslatedStatement } from './sql-dialect.js';
import { StatementThread, type StatementThreadOptions } from './statement-thread.js';

/**
 * Statements prepared on the connection: the store's own (about 150 texts) fit with room to spare;
 * beyond them, texts run unnamed, so no client can grow the connection's memory.
 */
const MAX_NAMED = 512;
/** Unnamed statements whose translation is kept (like SQLite's `recentStatement`). */
const MAX_RECENT = 256;

/** The advisory-lock key of the one-writer rule ('ufdl' 'wrtr' as two int4s). */
export const WRITER_LOCK: readonly [number, number] = [0x7566646c, 0x77727472];

type Row = Record<string, unknown>;

/** SQLite's forms: 0/1 for booleans, Buffers for bytes (a thread hands them over as Uint8Arrays). */
function sqliteShaped(row: Row): Row {
  for (const key in row) {
    const value = row[key];
    if (typeof value === 'boolean') row[key] = value ? 1 : 0;
    else if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return row;
}

/** better-sqlite3 binds `stmt.run(a, b)` and `stmt.run([a, b])` alike; booleans are not bindable there. */
function bindings(params: unknown[]): unknown[] {
  const flat = params.length === 1 && Array.isArray(params[0]) ? (params[0] as unknown[]) : params;
  return flat.map((value) => (value === undefined ? null : value));
}

export class PostgresStatement {
  constructor(
    readonly database: PostgresDatabase,
    readonly source: string,
    readonly translated: TranslatedStatement,
    readonly name: string,
  ) {}

  get(...params: unknown[]): Row | undefined {
    const row = this.database.query(this, bindings(params)).rows[0];
    return row === undefined ? undefined : sqliteShaped(row);
  }

  all(...params: unknown[]): Row[] {
    return this.database.query(this, bindings(params)).rows.map(sqliteShaped);
  }

  run(...params: unknown[]): { changes: number; lastInsertRowid: number } {
    const { rows, rowCount } = this.database.query(this, bindings(params));
    const pk = this.translated.returnsPk ? rows[0]?.pk : undefined;
    return { changes: rowCount, lastInsertRowid: typeof pk === 'number' ? pk : 0 };
  }
}

type TransactionFunction = ((...args: unknown[]) => unknown) & {
  deferred: (...args: unknown[]) => unknown;
  immediate: (...args: unknown[]) => unknown;
  exclusive: (...args: unknown[]) => unknown;
};

export class PostgresDatabase {
  /** Tells the two stores apart where SQL must differ (`dialectOf`). */
  readonly dialect = 'postgres';
  readonly #thread: StatementThread;
  /** Named (prepared once on the connection): the store's own statements, at most {@link MAX_NAMED}. */
  readonly #named = new Map<string, PostgresStatement>();
  /** Beyond those (texts built from clients' filters), the most recently used, unnamed. */
  readonly #recent = new Map<string, PostgresStatement>();
  #depth = 0;
  #open = true;

  constructor(options: StatementThreadOptions) {
    this.#thread = new StatementThread(options);
  }

  get open(): boolean {
    return this.#open;
  }

  prepare(sql: string): PostgresStatement {
    const named = this.#named.get(sql);
    if (named) return named;
    let statement = this.#recent.get(sql);
    if (statement) {
      this.#recent.delete(sql);
    } else if (this.#named.size < MAX_NAMED) {
      // Named, so PostgreSQL parses and plans it once per connection, as SQLite compiles it once.
      statement = new PostgresStatement(this, sql, translateToPostgres(sql), `ufdl_${this.#named.size + 1}`);
      this.#named.set(sql, statement);
      return statement;
    } else {
      // A prepared statement lives as long as the connection: texts that clients' filters can vary
      // without end must not pile up there, so these run unnamed (parsed on each run).
      statement = new PostgresStatement(this, sql, translateToPostgres(sql), '');
      if (this.#recent.size >= MAX_RECENT) this.#recent.delete(this.#recent.keys().next().value!);
    }
    this.#recent.set(sql, statement);
    return statement;
  }

  /** Run a translated statement (for {@link PostgresStatement}). */
  query(statement: PostgresStatement, values: unknown[]): { rows: Row[]; rowCount: number } {
    return this.#thread.query(statement.translated.text, values, statement.name === '' ? undefined : statement.name);
  }

  /** Statements without parameters, as they are (PostgreSQL's own SQL). */
  exec(sql: string): this {
    this.#thread.query(sql, []);
    return this;
  }

  transaction(fn: (...args: unknown[]) => unknown): TransactionFunction {
    const run = (...args: unknown[]) => this.#inTransaction(() => fn(...args));
    return Object.assign(run, { deferred: run, immediate: run, exclusive: run });
  }

  #inTransaction<T>(fn: () => T): T {
    const outermost = this.#depth === 0;
    const savepoint = `ufdl_sp_${this.#depth}`;
    if (outermost) {
      this.#thread.query('BEGIN', []);
      try {
        this.#thread.query('SELECT pg_advisory_xact_lock($1, $2)', [...WRITER_LOCK]);
      } catch (err) {
        this.#rollback('ROLLBACK');
        throw err;
      }
    } else {
      this.#thread.query(`SAVEPOINT ${savepoint}`, []);
    }
    this.#depth++;
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.#depth--;
      this.#rollback(outermost ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${savepoint}`);
      throw err;
    }
    this.#depth--;
    if (outermost) this.#thread.query('COMMIT', []);
    else this.#thread.query(`RELEASE SAVEPOINT ${savepoint}`, []);
    return result;
  }

  /** Roll back; a failure here (the connection gone) must not hide the error that caused it. */
  #rollback(statement: string): void {
    try {
      this.#thread.query(statement, []);
    } catch {
      // The transaction is over either way: PostgreSQL rolls back what a lost connection held.
    }
  }

  pragma(): never {
    throw new Error('PRAGMA is SQLite-only; this store runs on PostgreSQL');
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    void this.#thread.close();
  }

  /** Close and wait until the connection's thread has ended. */
  async shutdown(): Promise<void> {
    this.#open = false;
    await this.#thread.close();
  }

  /** The handle as the store's modules take it: they use only what this class implements. */
  asDb(): Db {
    return this as unknown as Db;
  }
}

/** Which SQL dialect `db` speaks, for the few statements written in both. */
export function dialectOf(db: Db): 'sqlite' | 'postgres' {
  return (db as unknown as { dialect?: string }).dialect === 'postgres' ? 'postgres' : 'sqlite';
}
