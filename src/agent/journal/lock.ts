/**
 * One agent per journal. The lock is an exclusive SQLite lock held on a side file
 * (`<journal>.lock`) for as long as the journal is open: SQLite takes it with POSIX `fcntl` locks,
 * which the kernel drops the moment the holding process dies, so a journal left behind by
 * `kill -9`, an OOM kill or a power cut is never "stale" — the next agent simply gets the lock.
 * That is sturdier than a pid file, whose pid may since belong to someone else (pid 1 in every
 * container). SQLite also refuses the lock to a second connection inside the same process.
 *
 * The journal's `agent_lock` row labels the holder (pid, start identity, host) so that the refusal
 * can say who holds it and `ufdl-agent status` can show it. It is also the second line: the side
 * file can be deleted under a running agent, and the next opener then locks a fresh file; `open.ts`
 * refuses it anyway when the label names another live process (by pid *and* start identity, so a
 * reused pid never counts).
 */
import Database from 'better-sqlite3';
import { JournalError } from './errors.js';

/** An exclusive lock on a journal; `release()` is idempotent. */
export interface JournalLock {
  readonly path: string;
  release(): void;
}

/** The side file holding the lock of the journal at `journalPath`. */
export function lockPathFor(journalPath: string): string {
  return `${journalPath}.lock`;
}

/**
 * Take the lock of the journal at `journalPath`, or return null when another connection holds it
 * (the caller turns that into a `JournalLockedError` naming the holder).
 */
export function tryLockJournal(journalPath: string): JournalLock | null {
  const path = lockPathFor(journalPath);
  // timeout 0: a held lock is reported at once, never waited for.
  const db = new Database(path, { timeout: 0 });
  try {
    // In EXCLUSIVE locking mode SQLite keeps the write lock it takes until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS lock (id INTEGER PRIMARY KEY, taken_at TEXT NOT NULL)');
    db.prepare('INSERT OR REPLACE INTO lock (id, taken_at) VALUES (1, ?)').run(new Date().toISOString());
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
      return null;
    }
    throw new JournalError('JOURNAL_LOCKED', `Could not take the journal lock ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
