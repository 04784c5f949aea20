/**
 * The thread that holds a replica's PostgreSQL connection, and the blocking call that asks it to run
 * one statement.
 *
 * The store is synchronous by design: on SQLite a transition is one `BEGIN IMMEDIATE` that never
 * yields, so no other request of the process can interleave with it (docs/ARCHITECTURE.md, "The store
 * on two databases"). To run the same store code on PostgreSQL, each statement is sent to this thread,
 * which runs it on its connection with the `pg` client, and the event loop waits (`Atomics.wait`) for
 * the answer, as it waits for SQLite's disk reads. The connection is the replica's one connection for
 * requests: a replica's requests are serial in its event loop anyway, and the replicas are what runs
 * in parallel.
 *
 * The thread's code is {@link statementThreadMain}, started from its source text (`eval`), so the same
 * file serves the compiled package and the tests that run the TypeScript sources; it names `pg` by the
 * absolute path this module resolves, so it loads the package's own copy.
 */
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type pg from 'pg';

/** One statement for the thread. `name` makes it a prepared statement on the connection. */
export interface StatementRequest {
  id: number;
  text: string;
  values: unknown[];
  name?: string | undefined;
}

export interface StatementReply {
  id: number;
  rows?: Record<string, unknown>[];
  rowCount?: number | null;
  error?: { message: string; code?: string | undefined; lost?: boolean };
}

/** A statement failed because the database was unreachable, or took longer than allowed. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/** A statement PostgreSQL refused (a constraint, a bad cast): a bug or a conflict, not an outage. */
export class DatabaseStatementError extends Error {
  override name = 'DatabaseStatementError';
  constructor(
    message: string,
    /** PostgreSQL's SQLSTATE, e.g. `23505` for a unique violation. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface StatementThreadOptions {
  /** Connection settings (`connection.ts`'s `poolConfig`), without functions: they cannot cross threads. */
  connection: pg.ClientConfig;
  /** A statement that runs longer is cancelled by PostgreSQL. @default 30000 */
  statementTimeoutMs?: number;
  /**
   * A session that sits inside a transaction, sending nothing, for longer is ended by PostgreSQL.
   * The store's transactions never yield between statements, so a transaction that goes quiet
   * belongs to a replica that froze (SIGSTOP, a paused VM) or was cut off by a network that drops
   * packets — and it holds the one-writer lock, which every replica's next transition waits for. A
   * socket that closes frees it at once; this frees it when nothing closes.
   * @default 10000
   */
  idleInTransactionTimeoutMs?: number;
}

/**
 * The thread's body. Runs in the worker, from its source text: it may use only its parameters
 * (no imports, no closures over this module).
 */
function statementThreadMain(threads: typeof import('node:worker_threads'), pgModule: typeof pg): void {
  const { port, flag, connection, statementTimeoutMs, idleInTransactionTimeoutMs } = threads.workerData as {
    port: MessagePort;
    flag: Int32Array;
    connection: pg.ClientConfig;
    statementTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
  };
  // Big integers (pks, sizes) and numerics (sums) as numbers: every value the server stores fits.
  pgModule.types.setTypeParser(20, Number);
  pgModule.types.setTypeParser(1700, Number);
  // Inside the thread's body: it may use nothing from outside its parameters.
  const QUERY_TIMEOUT_MARGIN_MS = 5_000;
  let client: pg.Client | undefined;
  let lost: Error | undefined;
  /** The connection is inside a transaction: losing it there fails every statement until its end. */
  let inTransaction = false;
  let failedTransaction = false;

  const connect = async (): Promise<pg.Client> => {
    const fresh = new pgModule.Client({
      ...connection,
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: idleInTransactionTimeoutMs,
      // PostgreSQL cancels a statement after statement_timeout, but only an answer that arrives ends
      // the wait: on a connection gone silent (packets dropped, the host gone) none ever does, and
      // every later statement queued behind it. Given up a little after the cancel would have come,
      // the statement fails without a code, so the connection counts as lost and is replaced.
      query_timeout: statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    } as pg.ClientConfig);
    fresh.on('error', (err) => {
      lost = err;
    });
    await fresh.connect();
    lost = undefined;
    client = fresh;
    return fresh;
  };

  const answer = (reply: StatementReply): void => {
    port.postMessage(reply);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };

  /**
   * A prepared statement whose result columns changed under it — another replica, of a newer
   * version, migrated the shared database and added a column to a table it reads with `*`. PostgreSQL
   * refuses to run it again on this connection ("cached plan must not change result type"); the
   * routine names the case whatever the language of the server's messages.
   */
  const preparedBeforeASchemaChange = (err: unknown): boolean => {
    const { code, routine } = err as { code?: string; routine?: string };
    return code === '0A000' && routine === 'RevalidateCachedQuery';
  };

  const run = async (request: StatementRequest): Promise<StatementReply> => {
    const keyword = /^\s*(\w+)/.exec(request.text)?.[1]?.toUpperCase();
    const ends = keyword === 'COMMIT' || keyword === 'ROLLBACK';
    if (failedTransaction) {
      // The connection this transaction ran on is gone, and with it the transaction: nothing more
      // of it may run, least of all on a new connection, where it would commit statement by statement.
      if (ends) failedTransaction = false;
      return { id: request.id, error: { message: 'the connection to PostgreSQL was lost inside a transaction; it was rolled back', lost: true } };
    }
    let active = client;
    try {
      if (active === undefined || lost !== undefined) {
        if (active !== undefined) active.end().catch(() => {});
        client = undefined;
        if (inTransaction) {
          // The connection died between two statements of a transaction: PostgreSQL rolled it back.
          inTransaction = false;
          if (keyword === 'ROLLBACK') return { id: request.id, rows: [], rowCount: 0 };
          if (!ends) failedTransaction = true;
          return { id: request.id, error: { message: 'the connection to PostgreSQL was lost inside a transaction; it was rolled back', lost: true } };
        }
        try {
          active = await connect();
        } catch (err) {
          // Whatever PostgreSQL says when it will not take a connection (down, refusing this database,
          // out of connection slots), the database cannot be reached now.
          return { id: request.id, error: { message: (err as Error).message, code: (err as { code?: string }).code, lost: true } };
        }
      }
      if (keyword === 'BEGIN') inTransaction = true;
      const statement = { text: request.text, values: request.values, ...(request.name ? { name: request.name } : {}) };
      let result;
      try {
        result = await active.query(statement);
      } catch (err) {
        if (inTransaction || !preparedBeforeASchemaChange(err)) throw err;
        // Alone, the statement can run again: on a new connection, where every statement is
        // prepared afresh against the tables as they are now.
        active.end().catch(() => {});
        client = undefined;
        try {
          active = await connect();
        } catch (connectErr) {
          return { id: request.id, error: { message: (connectErr as Error).message, code: (connectErr as { code?: string }).code, lost: true } };
        }
        result = await active.query(statement);
      }
      if (ends) inTransaction = false;
      const rows = Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows;
      return { id: request.id, rows, rowCount: Array.isArray(result) ? null : result.rowCount };
    } catch (err) {
      const error = err as Error & { code?: string };
      // A statement prepared before a schema change fails on this connection every time it runs:
      // the connection is replaced, and the transaction it was in fails as one whose connection was lost.
      const gone = lost !== undefined || error.code === undefined || error.code.startsWith('08') || error.code === '57P01' || preparedBeforeASchemaChange(error);
      if (gone) {
        client = undefined;
        active?.end().catch(() => {});
        if (inTransaction && !ends) failedTransaction = true;
        inTransaction = false;
      }
      if (ends) inTransaction = false;
      return { id: request.id, error: { message: error.message, code: error.code, lost: gone } };
    }
  };

  // One statement at a time, in order: a late answer to a call that timed out must not overtake.
  let chain = Promise.resolve();
  port.on('message', (request: StatementRequest) => {
    chain = chain.then(async () => answer(await run(request)));
  });
  port.on('close', () => {
    void client?.end().catch(() => {});
  });
}

export class StatementThread {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  readonly #timeoutMs: number;
  #nextId = 1;
  #closed = false;

  constructor(options: StatementThreadOptions) {
    const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
    const idleInTransactionTimeoutMs = options.idleInTransactionTimeoutMs ?? 10_000;
    // A statement is cancelled by PostgreSQL after its timeout, and given up by the thread a little
    // later; the wait here covers that and the connection set-up (10 s) on top, so the thread has
    // answered — and is free for the next statement — by the time the wait ends.
    this.#timeoutMs = statementTimeoutMs + 20_000;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const pgPath = createRequire(import.meta.url).resolve('pg');
    const source = `(${statementThreadMain.toString()})(require('node:worker_threads'), require(${JSON.stringify(pgPath)}))`;
    this.#worker = new Worker(source, {
      eval: true,
      workerData: { port: port2, flag: this.#flag, connection: options.connection, statementTimeoutMs, idleInTransactionTimeoutMs },
      transferList: [port2],
    });
    // The thread holds no requests of its own; it must not keep a closing process alive.
    this.#worker.unref();
  }

  /** Run one statement and return its rows; blocks until the thread answers. */
  query(text: string, values: unknown[], name?: string): { rows: Record<string, unknown>[]; rowCount: number } {
    if (this.#closed) throw new DatabaseUnreachableError('the database connection is closed');
    const id = this.#nextId++;
    this.#port.postMessage({ id, text, values, name } satisfies StatementRequest);
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      // The port first: the flag only says "look again", so a reply posted before the wait began
      // (the flag already set) is never missed, and a stale reply never hides ours.
      const message = receiveMessageOnPort(this.#port);
      if (message === undefined) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new DatabaseUnreachableError(`PostgreSQL did not answer within ${Math.round(this.#timeoutMs / 1000)} s`);
        Atomics.wait(this.#flag, 0, 0, remaining);
        Atomics.store(this.#flag, 0, 0);
        continue;
      }
      const reply = message.message as StatementReply;
      // An answer to an earlier call that timed out: drop it and wait for ours.
      if (reply.id !== id) continue;
      if (reply.error) {
        if (reply.error.lost === true) throw new DatabaseUnreachableError(`PostgreSQL: ${reply.error.message}`);
        throw new DatabaseStatementError(`PostgreSQL: ${reply.error.message}`, reply.error.code);
      }
      return { rows: reply.rows ?? [], rowCount: reply.rowCount ?? 0 };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.close();
    await this.#worker.terminate();
  }
}
