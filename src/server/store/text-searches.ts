/**
 * Lists whose filter searches text (`searchesText` in protocol/filter.ts), off the event loop.
 *
 * A `contains` term costs every row up to its text's length: 500 one-character terms over 20 jobs
 * with 1 MB descriptions took 14 s in one SELECT, and the SQLite store runs its statements on the
 * event loop — for those seconds the server answered nobody (no heartbeat, no acquire, no poll). Any
 * user who may create and list jobs could do that at will. So on SQLite these SELECTs run on a reader
 * worker thread with its own read-only connection to the database file (WAL lets it read while the
 * server writes); the rows come back to the route, which builds its answer on the main connection as
 * for any list. Lists without a text search (the agents' poll filter) never come here.
 *
 * Bounds, so that the reader cannot be made a queue without end either:
 * - one search at a time per user: a second one while the first is queued or running is refused
 *   (429 `UFDL_ERR_REQ_SEARCH_BUSY`) — a user's client has no need of two at once;
 * - the reader runs its searches one after another, in arrival order;
 * - each search has a time limit (`serve.search_time_limit`, counted from its arrival, so
 *   the wait behind others' searches counts): past it the answer is 503 `UFDL_ERR_SERVER_SEARCH_TIMEOUT`
 *   and the search is abandoned. better-sqlite3 cannot interrupt a statement, so the worker's
 *   connection has a function, `ufdl_search_deadline(pk)`, that every search calls for each row of each table it
 *   looks at, and that throws once the deadline has passed; a worker that still has not answered
 *   {@link ABANDON_GRACE_MS} later (one row can take long) is terminated and a new one started.
 *
 * A worker that dies fails its search with 503 `UFDL_ERR_SERVER_SEARCH_FAILED` (retry) and the next
 * search starts a new one; the server goes on.
 *
 * Consistency: the reader sees committed rows only. Every write a client was answered for is
 * committed before that answer left (group commit, `durability.ts`: the sync commits the open turn
 * batch first), so a search sent after it sees it. Writes of the current turn batch, not yet
 * answered, may be missed, as if the search had come a moment earlier.
 *
 * On PostgreSQL the same interface runs the statement on the store's connection with
 * `SET statement_timeout` to the same limit: bounded, but the event loop still waits for it (the
 * store's statements are synchronous there, `postgres/statement-thread.ts`).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { UfdlError } from '../../protocol/errors.js';
import type { Db } from './db.js';
import { DatabaseStatementError } from './postgres/statement-thread.js';

/** How long an abandoned search may take to stop by itself before its worker is terminated. */
export const ABANDON_GRACE_MS = 2000;
/**
 * Test hook: a file. While it exists, the reader holds each search before running it (and writes
 * `<file>.held` to say so); when the file holds `exit`, the worker exits there. Lets a test see the
 * server answer others while a search runs, without timing.
 */
export const SEARCH_HOLD_ENV = 'UFDL_SERVER_SEARCH_HOLD';

/**
 * The reader's per-row deadline check for one table of a statement (`TRUE` on PostgreSQL); `row` is
 * an expression of that table's row alone, its pk.
 *
 * One per table the statement reads, each ANDed in front of its WHERE clause: SQLite evaluates a
 * condition in the innermost loop over the tables it names, and a condition that names none once,
 * before every loop. A check of no table, or of the outer table of a join alone, would let the inner
 * loop (the jobs of one template, when the filter names the template) search unchecked: past the time
 * limit, and past the termination of its thread, which cannot stop SQLite's C code.
 */
export type SearchGuard = (row: string) => string;

/** Builds a list statement with {@link SearchGuard} conditions, one per table it reads. */
export type GuardedSql = (guard: SearchGuard) => string;

export interface TextSearches {
  /** The rows of the statement, run under the bounds above; rejects with a {@link UfdlError}. */
  all<T>(user: number, sql: GuardedSql, params: readonly unknown[]): Promise<T[]>;
  /** Stop the reader (before the database is closed). Idempotent. */
  close(): Promise<void>;
}

// Plain JavaScript run by `new Worker(…, { eval: true })`, as the checkpointer's (`checkpointer.ts`):
// the same code serves `src/` under the test runner and `dist/`.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
let deadline = Infinity;
// Not deterministic, so SQLite calls it for every row rather than once per statement; its argument
// (a table's pk) makes SQLite call it in that table's loop (SearchGuard).
db.function('ufdl_search_deadline', { deterministic: false }, (row) => {
  if (Date.now() > deadline) throw new Error('ufdl: the search passed its time limit');
  return 1;
});
const pause = new Int32Array(new SharedArrayBuffer(4));
const hold = () => {
  const file = workerData.holdFile;
  if (!file || !fs.existsSync(file)) return;
  fs.writeFileSync(file + '.held', '');
  for (;;) {
    let content;
    try { content = fs.readFileSync(file, 'utf8'); } catch { break; }
    if (content.trim() === 'exit') process.exit(1);
    Atomics.wait(pause, 0, 0, 10);
  }
  fs.rmSync(file + '.held', { force: true });
};
const statements = new Map();
parentPort.on('message', (message) => {
  if (message.type === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  deadline = message.deadline;
  try {
    hold();
    let statement = statements.get(message.sql);
    if (!statement) {
      statement = db.prepare(message.sql);
      if (statements.size >= 64) statements.delete(statements.keys().next().value);
      statements.set(message.sql, statement);
    }
    parentPort.postMessage({ id: message.id, rows: statement.all(...message.params) });
  } catch (err) {
    parentPort.postMessage({ id: message.id, error: String((err && err.message) || err) });
  } finally {
    deadline = Infinity;
  }
});
`;

/** The per-row deadline check of the SQLite reader (exported for tests). */
export const SQLITE_SEARCH_GUARD: SearchGuard = (row) => `ufdl_search_deadline(${row})`;

interface Search {
  readonly id: number;
  readonly user: number;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly deadline: number;
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (err: UfdlError) => void;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
}

function busy(): UfdlError {
  return new UfdlError(
    'UFDL_ERR_REQ_SEARCH_BUSY',
    'Another list of this user whose filter searches text (contains, or a case-insensitive exact) is still running; one such list at a time per user: send this one once that one is answered',
  );
}

function timedOut(limitSeconds: number): UfdlError {
  return new UfdlError(
    'UFDL_ERR_SERVER_SEARCH_TIMEOUT',
    `The list's text search took longer than the server allows (serve.search_time_limit = ${limitSeconds}) and was abandoned; narrow the filter (fewer or longer contains strings, more exact terms) or retry later`,
  );
}

/**
 * The longest time limit kept as given, 2^31 - 1 ms (about 24.8 days): Node's timers take a longer
 * delay as 1 ms, and PostgreSQL's `statement_timeout` refuses one. A longer limit is this one.
 */
const MAX_LIMIT_MS = 2 ** 31 - 1;

/** `serve.search_time_limit` in whole milliseconds, at least 1, at most {@link MAX_LIMIT_MS}. */
function limitMsOf(limitSeconds: number): number {
  return Math.min(MAX_LIMIT_MS, Math.max(1, Math.round(limitSeconds * 1000)));
}

/** Text searches on a worker thread reading the SQLite file of `db`. */
export function sqliteTextSearches(db: Db, log: Pick<Logger, 'warn' | 'error'>, limitSeconds: number): TextSearches {
  const limitMs = limitMsOf(limitSeconds);
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const holdFile = process.env[SEARCH_HOLD_ENV] || undefined;
  const users = new Set<number>();
  const queue: Search[] = [];
  let worker: Worker | null = null;
  /** The search the worker is running (settled already when abandoned), by message id. */
  let running: Search | null = null;
  let graceTimer: NodeJS.Timeout | undefined;
  let nextId = 1;
  let closing = false;

  const settle = (search: Search, outcome: { rows: unknown[] } | { error: UfdlError }) => {
    if (search.settled) return;
    search.settled = true;
    clearTimeout(search.timer);
    users.delete(search.user);
    if ('rows' in outcome) search.resolve(outcome.rows);
    else search.reject(outcome.error);
  };

  const workerDone = () => {
    running = null;
    clearTimeout(graceTimer);
    pump();
  };

  const start = (): Worker => {
    const fresh = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: db.name, driver, holdFile },
    });
    // The server's lifetime is its listening socket's; an idle reader must not extend it.
    fresh.unref();
    fresh.on('message', (message: { id: number; rows?: unknown[]; error?: string }) => {
      if (fresh !== worker || running === null || message.id !== running.id) return;
      const search = running;
      if (message.error === undefined) settle(search, { rows: message.rows ?? [] });
      else if (Date.now() > search.deadline) settle(search, { error: timedOut(limitSeconds) });
      // Rows the reader could not read (the file unreadable, no memory): the server's trouble, not the filter's.
      else {
        log.error({ err: message.error }, 'a text search failed on the reader thread');
        settle(search, { error: new UfdlError('UFDL_ERR_SERVER_SEARCH_FAILED', `The list's text search failed on the server: ${message.error}; retry`) });
      }
      workerDone();
    });
    fresh.on('error', (err) => log.error({ err }, 'the text search reader thread failed'));
    fresh.once('exit', (code) => {
      if (fresh !== worker) return;
      worker = null;
      if (closing) return;
      log.error({ code }, 'the text search reader thread stopped; the next search starts a new one');
      if (running !== null) {
        settle(running, {
          error: new UfdlError('UFDL_ERR_SERVER_SEARCH_FAILED', 'The thread running the list\'s text search stopped during the search; it is restarted: retry'),
        });
      }
      workerDone();
    });
    return fresh;
  };

  const pump = () => {
    if (closing || running !== null) return;
    const search = queue.shift();
    if (search === undefined) return;
    try {
      worker ??= start();
    } catch (err) {
      // No thread could be made (out of memory, too many threads): this search fails, the next tries again.
      log.error({ err }, 'the text search reader thread could not be started');
      settle(search, { error: new UfdlError('UFDL_ERR_SERVER_SEARCH_FAILED', "The thread that runs the list's text search could not be started; retry") });
      pump();
      return;
    }
    running = search;
    worker.postMessage({ id: search.id, sql: search.sql, params: search.params, deadline: search.deadline });
  };

  const onDeadline = (search: Search) => {
    settle(search, { error: timedOut(limitSeconds) });
    const queued = queue.indexOf(search);
    if (queued >= 0) {
      queue.splice(queued, 1);
      return;
    }
    if (running !== search) return;
    // The worker's deadline check stops the statement at its next row; a row that takes longer than
    // the grace (or a worker that no longer answers) costs the worker.
    graceTimer = setTimeout(() => {
      if (running !== search || worker === null) return;
      log.warn({ graceMs: ABANDON_GRACE_MS }, 'an abandoned text search did not stop; restarting the reader thread');
      const stuck = worker;
      worker = null;
      void stuck.terminate();
      workerDone();
    }, ABANDON_GRACE_MS);
    graceTimer.unref();
  };

  return {
    all<T>(user: number, sql: GuardedSql, params: readonly unknown[]): Promise<T[]> {
      if (closing) return Promise.reject(new UfdlError('UFDL_ERR_SERVER_UNAVAILABLE', 'The server is shutting down'));
      if (users.has(user)) return Promise.reject(busy());
      users.add(user);
      return new Promise<T[]>((resolve, reject) => {
        const search: Search = {
          id: nextId++,
          user,
          sql: sql(SQLITE_SEARCH_GUARD),
          params,
          deadline: Date.now() + limitMs,
          resolve: resolve as (rows: unknown[]) => void,
          reject,
          timer: undefined,
          settled: false,
        };
        search.timer = setTimeout(() => onDeadline(search), limitMs);
        queue.push(search);
        pump();
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      const unavailable = new UfdlError('UFDL_ERR_SERVER_UNAVAILABLE', 'The server is shutting down');
      for (const search of queue.splice(0)) settle(search, { error: unavailable });
      if (running !== null) settle(running, { error: unavailable });
      clearTimeout(graceTimer);
      const last = worker;
      worker = null;
      // Terminated, not stopped politely: it may be in the middle of a long search.
      if (last !== null) await last.terminate();
    },
  };
}

/** PostgreSQL's SQLSTATE for a statement cancelled by `statement_timeout`. */
const QUERY_CANCELED = '57014';

/**
 * Text searches on PostgreSQL: on the store's connection, synchronously like its every statement,
 * with `statement_timeout` set to the time limit for this statement only. The per-user bound needs
 * nothing: the event loop runs one statement at a time.
 */
export function postgresTextSearches(db: Db, limitSeconds: number): TextSearches {
  const limitMs = limitMsOf(limitSeconds);
  return {
    async all<T>(_user: number, sql: GuardedSql, params: readonly unknown[]): Promise<T[]> {
      db.exec(`SET statement_timeout = ${limitMs}`);
      try {
        return db.prepare(sql(() => 'TRUE')).all(...params) as T[];
      } catch (err) {
        if (err instanceof DatabaseStatementError && err.code === QUERY_CANCELED) throw timedOut(limitSeconds);
        throw err;
      } finally {
        // Back to the connection's own timeout (set when it connected).
        db.exec('RESET statement_timeout');
      }
    },
    async close() {},
  };
}
