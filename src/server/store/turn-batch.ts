/**
 * The writes of one event-loop turn in one SQLite transaction.
 *
 * Every transition is its own transaction, and a commit is the dearest part of it: taking and
 * dropping the WAL's locks, writing each changed page to the WAL as a new frame, checksumming it (a
 * sixth of the server's CPU under the lifecycle load). Requests that arrive together are handled in
 * the same turn of the event loop, and their answers wait for the same disk sync anyway (group
 * commit, `durability.ts`); so the first write of a turn opens a transaction (`BEGIN IMMEDIATE`),
 * every transaction of the turn runs inside it as a savepoint (better-sqlite3 nests
 * `db.transaction()` that way), and the turn's end commits them all at once. A refused transition
 * rolls back to its savepoint and undoes nothing of the others.
 *
 * Nothing is answered before the batch commits: an answer waits for the sync that covers its
 * changes, and the sync commits the open batch before it starts (`WalFlusher.flush`).
 *
 * While a sync is in flight the batch outlives its turn ({@link holdTurnBatches}): a commit made
 * then would wait for the next sync anyway, so the writes of every turn until the sync completes
 * share one commit, made at the end of the turn it completes in (or by the next sync, if that starts
 * first). Under load that is one commit per sync instead of one per turn (3.5 turns with writes per
 * sync under the lifecycle load). A batch that
 * does not commit (the disk full, an I/O error that made SQLite roll the whole transaction back)
 * fails that sync: every answer waiting for it is 503 (`UFDL_ERR_SERVER_NOT_DURABLE`), never 200,
 * and the events of the lost transitions are dropped.
 *
 * Only the SQLite store batches (`open-store.ts`); the write lock is held for the rest of the turn,
 * sub-millisecond, which another process on the file waits out (`busy_timeout`).
 */
import type { Statement } from 'better-sqlite3';
import type { Db } from './db.js';

interface Batching {
  begin: Statement;
  commit: Statement;
  rollback: Statement;
  /** A batch was begun and not yet committed (or found lost). */
  open: boolean;
  /** A sync is in flight: the turn's end leaves the batch open, for the end of the turn the sync completes in. */
  held: boolean;
  /** `total_changes()` when the open batch began: its changes are counted above it. */
  openedAt: number;
  /** The batches that did not commit since the last {@link takeLostBatches}. */
  lost: LostBatch[];
  /** Batches committed (metrics: commits per sync). */
  commits: number;
}

/** A batch that did not commit; its changes are those counted in (`from`, `to`] by `total_changes()`. */
export interface LostBatch {
  from: number;
  to: number;
  cause: unknown;
}

/**
 * Batches did not commit: a COMMIT failed, or SQLite rolled the whole transaction back after an
 * error (the disk full, an I/O error). Thrown by the sync that was to cover them.
 */
export class BatchLostError extends Error {
  constructor(readonly batches: readonly LostBatch[]) {
    const [first] = batches;
    super(`${batches.length === 1 ? 'a batch' : `${batches.length} batches`} of writes did not commit${first?.cause instanceof Error ? `: ${first.cause.message}` : ''}`, {
      cause: first?.cause,
    });
    this.name = 'BatchLostError';
  }

  /** Whether the change counted `count` (a `total_changes()` taken just after it) was lost. */
  includes(count: number): boolean {
    return this.batches.some((b) => b.from < count && count <= b.to);
  }
}

const batchings = new WeakMap<Db, Batching>();
const changeCounters = new WeakMap<Db, Statement>();

/**
 * SQLite's `total_changes()` on `db`: rows inserted, updated or deleted on this connection, the
 * count batches and the durability barrier (`durability.ts`) measure commits by. Its own statement:
 * a shared one's mode must not change (see `cachedStatement`), and this one plucks.
 */
export function totalChanges(db: Db): number {
  let statement = changeCounters.get(db);
  if (statement === undefined) {
    statement = db.prepare('SELECT total_changes()').pluck();
    changeCounters.set(db, statement);
  }
  return statement.get() as number;
}

/** Batch the writes of each turn on `db` from now on. */
export function batchWritesPerTurn(db: Db): void {
  batchings.set(db, {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    open: false,
    held: false,
    openedAt: 0,
    lost: [],
    commits: 0,
  });
}

/** How many batches `db` has committed (0 for a database that does not batch). */
export function turnBatchCommits(db: Db): number {
  return batchings.get(db)?.commits ?? 0;
}

/** Whether `db` batches the writes of each turn (the SQLite store's connection). */
export function batchesWritesPerTurn(db: Db): boolean {
  return batchings.has(db);
}

/**
 * Before a write transaction: open the turn's batch if `db` batches and none is open. Returns true
 * when it opened one (the transaction is then the batch's first, and needs no savepoint of its own:
 * {@link abandonTurnBatch} undoes it). A no-op for a database that does not batch (the PostgreSQL
 * store, tests' plain databases), or while another transaction is open.
 */
export function joinTurnBatch(db: Db): boolean {
  const batching = batchings.get(db);
  if (batching === undefined || db.inTransaction) return false;
  if (batching.open) lose(db, batching, undefined);
  batching.openedAt = totalChanges(db);
  batching.begin.run();
  batching.open = true;
  setImmediate(endTurn, db, batching);
  return true;
}

function endTurn(db: Db, batching: Batching): void {
  if (!batching.held) commitTurnBatch(db);
}

/**
 * Keep `db`'s batch open across turns until the returned release is called (the disk sync in flight
 * has completed); the batch is then committed at the end of that turn, with the writes of the
 * requests read in the same turn, which the next sync covers too. A no-op for a database that does
 * not batch.
 */
export function holdTurnBatches(db: Db): () => void {
  const batching = batchings.get(db);
  if (batching === undefined) return () => {};
  batching.held = true;
  return () => {
    batching.held = false;
    if (batching.open) setImmediate(endTurn, db, batching);
  };
}

/** Roll back the batch, which holds only the transaction that opened it and then failed. */
export function abandonTurnBatch(db: Db): void {
  const batching = batchings.get(db);
  if (batching === undefined || !batching.open) return;
  batching.open = false;
  if (db.inTransaction) batching.rollback.run();
}

/** Commit the open batch now (the turn's end, a sync about to start, the database closing). */
export function commitTurnBatch(db: Db): void {
  const batching = batchings.get(db);
  if (batching === undefined || !batching.open || !db.open) return;
  if (!db.inTransaction) {
    lose(db, batching, undefined);
    return;
  }
  try {
    batching.commit.run();
    batching.open = false;
    batching.commits++;
  } catch (err) {
    try {
      if (db.inTransaction) batching.rollback.run();
    } finally {
      lose(db, batching, err);
    }
  }
}

function lose(db: Db, batching: Batching, cause: unknown): void {
  batching.open = false;
  batching.lost.push({ from: batching.openedAt, to: totalChanges(db), cause });
}

/** The batches that did not commit since the last call, as one error; undefined when all did. */
export function takeLostBatches(db: Db): BatchLostError | undefined {
  const batching = batchings.get(db);
  if (batching === undefined || batching.lost.length === 0) return undefined;
  return new BatchLostError(batching.lost.splice(0));
}
