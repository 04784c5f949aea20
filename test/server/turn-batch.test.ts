/**
 * The writes of one event-loop turn in one SQLite transaction (`store/turn-batch.ts`): committed
 * together by the sync that covers them, a refused transaction undoing only itself, and a batch that
 * does not commit failing that sync (503 upstream) with its events dropped, never announced.
 */
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { immediateTransaction, type Db } from '../../src/server/store/db.js';
import { BatchLostError, batchWritesPerTurn, holdTurnBatches, turnBatchCommits } from '../../src/server/store/turn-batch.js';
import { temporaryDatabase } from './support/database.js';

async function batchingDatabase() {
  const { db, durability } = await temporaryDatabase('ufdl-turn-batch-');
  db.exec(`
    CREATE TABLE t (x INTEGER);
    CREATE TABLE parent (pk INTEGER PRIMARY KEY);
    CREATE TABLE child (parent INTEGER REFERENCES parent(pk) DEFERRABLE INITIALLY DEFERRED);
  `);
  batchWritesPerTurn(db);
  // Another connection on the file sees only what is committed.
  const other = new Database(db.name, { readonly: true });
  onTestFinished(() => void other.close());
  const committed = (table: string) => other.prepare(`SELECT * FROM ${table} ORDER BY rowid`).raw().all().flat();
  return { db, barrier: durability.barrier, committed };
}

const insert = (db: Db, x: number) => db.prepare('INSERT INTO t (x) VALUES (?)').run(x);
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('writes batched per turn', () => {
  it('commits the transactions of one turn together, a refused one undoing only itself', async () => {
    const { db, barrier, committed } = await batchingDatabase();
    const refused = (x: number) => () =>
      immediateTransaction(db, () => {
        insert(db, x);
        throw new Error('refused');
      });
    // The first of a batch (run without a savepoint of its own), then one inside it.
    expect(refused(0)).toThrow('refused');
    immediateTransaction(db, () => insert(db, 1));
    expect(refused(2)).toThrow('refused');
    immediateTransaction(db, () => insert(db, 3));
    // Still one open transaction: nothing is visible outside yet.
    expect(db.inTransaction).toBe(true);
    expect(committed('t')).toEqual([]);
    await barrier.syncAfterCommit();
    expect(committed('t')).toEqual([1, 3]);
    expect(db.inTransaction).toBe(false);
  });

  it('commits at the end of the turn even when nobody waits for a sync', async () => {
    const { db, committed } = await batchingDatabase();
    immediateTransaction(db, () => insert(db, 7));
    expect(committed('t')).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(committed('t')).toEqual([7]);
  });

  it('keeps one batch open across turns while held, and commits it once at the end of the turn it is released in', async () => {
    const { db, committed } = await batchingDatabase();
    const release = holdTurnBatches(db);
    immediateTransaction(db, () => insert(db, 1));
    await nextTurn();
    immediateTransaction(db, () => insert(db, 2));
    expect(() =>
      immediateTransaction(db, () => {
        insert(db, 3);
        throw new Error('refused');
      }),
    ).toThrow('refused');
    await nextTurn();
    // Two turns' writes in one open transaction; the refused one undid only itself.
    expect(db.inTransaction).toBe(true);
    expect(committed('t')).toEqual([]);
    expect(turnBatchCommits(db)).toBe(0);
    release();
    // A write of the turn the hold ends in joins the same batch.
    immediateTransaction(db, () => insert(db, 5));
    expect(committed('t')).toEqual([]);
    await nextTurn();
    expect(db.inTransaction).toBe(false);
    expect(committed('t')).toEqual([1, 2, 5]);
    expect(turnBatchCommits(db)).toBe(1);
    // Released: the turn's end commits again.
    immediateTransaction(db, () => insert(db, 4));
    await nextTurn();
    expect(committed('t')).toEqual([1, 2, 5, 4]);
    expect(turnBatchCommits(db)).toBe(2);
  });

  it('commits what was written while a sync ran once it completes, though nobody waits for it', async () => {
    const { db, barrier, committed } = await batchingDatabase();
    immediateTransaction(db, () => insert(db, 1));
    const synced = barrier.syncAfterCommit();
    // The sync started at the end of the turn, before this continuation; it is in flight now.
    await nextTurn();
    immediateTransaction(db, () => insert(db, 2));
    await synced;
    await nextTurn();
    expect(committed('t')).toEqual([1, 2]);
    expect(db.inTransaction).toBe(false);
    // The write made during the sync still needs a sync of its own before anyone is answered.
    expect(barrier.isDurable()).toBe(false);
    await barrier.syncAfterCommit();
    expect(barrier.isDurable()).toBe(true);
  });

  it('fails the sync of a batch whose COMMIT fails, drops its events, and keeps the next batch', async () => {
    const { db, barrier, committed } = await batchingDatabase();
    const seen: string[] = [];
    // A deferred foreign key: the violation is found by COMMIT, which then fails.
    immediateTransaction(db, () => insert(db, 1));
    immediateTransaction(db, () => db.prepare('INSERT INTO child (parent) VALUES (99)').run());
    barrier.afterSync(() => seen.push('lost'));
    const lost = barrier.syncAfterCommit();
    await expect(lost).rejects.toBeInstanceOf(BatchLostError);
    await expect(lost).rejects.toThrow(/did not commit: FOREIGN KEY constraint failed/);
    expect(committed('t')).toEqual([]);
    expect(committed('child')).toEqual([]);

    immediateTransaction(db, () => insert(db, 2));
    barrier.afterSync(() => seen.push('kept'));
    await barrier.syncAfterCommit();
    expect(committed('t')).toEqual([2]);
    expect(seen).toEqual(['kept']);
  });

  it('finds a batch that SQLite rolled back under it, and fails its sync', async () => {
    const { db, barrier, committed } = await batchingDatabase();
    immediateTransaction(db, () => insert(db, 1));
    // What SQLite does on some errors (a full disk, an I/O error): the whole transaction is undone.
    db.exec('ROLLBACK');
    immediateTransaction(db, () => insert(db, 2));
    await expect(barrier.syncAfterCommit()).rejects.toBeInstanceOf(BatchLostError);
    // The batch begun after the loss committed; only the answers were held back (503: outcome unknown).
    expect(committed('t')).toEqual([2]);
    // Only the batch that committed is counted.
    expect(turnBatchCommits(db)).toBe(1);
  });
});
