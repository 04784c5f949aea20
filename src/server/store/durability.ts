/**
 * Group commit: the guarantee that **an answered transition is on disk**, at the cost of one
 * `fdatasync` shared by every request that commits while the previous one runs, instead of one
 * fsync per commit on the event loop.
 *
 * The database runs in WAL mode with `synchronous = NORMAL` (`db.ts`): a commit is written to the
 * `-wal` file (so it survives a crash of the process, `kill -9`) but not synced (so it would not yet
 * survive a power cut or a kernel crash). {@link DurableBarrier} closes that gap: before any answer
 * leaves the server, and before any web-socket message is sent, it waits until an `fdatasync` of the
 * WAL that *started after the commit* has completed. (An `X-UFDL-Wait` wake-up is not held back: it
 * only leads to a list answer, and that answer waits like every other.)
 * The sync runs in libuv's thread pool (`FileHandle.datasync()`), never on the event loop, and at
 * most one is in flight: a commit made while one runs waits for the next, which then covers every
 * commit made meanwhile.
 *
 * Why syncing the WAL file alone is enough, checkpoints included (sqlite.org, "PRAGMA synchronous"
 * and "Write-Ahead Logging"): with `synchronous = NORMAL` in WAL mode SQLite itself syncs the WAL
 * before each checkpoint, syncs the database file after each completed checkpoint, and syncs the WAL
 * header when the WAL begins to be reused after a checkpoint. So a commit is durable once the WAL
 * holding it is synced; if a checkpoint copied it to the database file and the WAL was restarted
 * (its frames overwritten) before our sync, SQLite had synced both files on the way. A truncation
 * (`journal_size_limit`, `wal_checkpoint(TRUNCATE)`) keeps the inode, so the file handle stays valid,
 * and SQLite removes the `-wal` file only when the last connection closes. Should it still be
 * replaced from outside while we run, a round (at most a second later) notices the new inode, opens
 * the new file, syncs the directory that holds it, and syncs the database file too.
 *
 * Commits are counted by SQLite's `total_changes()` (rows inserted, updated or deleted on this
 * connection). A request that wrote nothing waits too when others have written and are not yet
 * synced, since its answer may show their changes: nobody is shown a state that a power cut could
 * undo.
 *
 * A failed sync (EIO, ENOSPC…) fails the requests that waited for it: they are answered 503
 * `UFDL_ERR_SERVER_NOT_DURABLE`, never 200, and the error is logged. Their events stay queued until a
 * later sync succeeds. (After a failed fsync Linux may have dropped the dirty pages; a later
 * successful sync does not bring them back. The server does not claim those commits, and the
 * operator learns from the log.)
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from './db.js';
import { BatchLostError, commitTurnBatch, holdTurnBatches, takeLostBatches, totalChanges } from './turn-batch.js';

/** What a barrier needs: how many commits there have been, and a way to make them all durable. */
export interface DurabilitySource {
  /** A counter that grows with every commit (never decreases). */
  commitCount(): number;
  /** Make every commit counted so far durable. Called with at most one call in flight. */
  flush(): Promise<void>;
}

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Deferred {
  target: number;
  run: () => void;
  /** Called instead of `run` when the commits it waited for did not commit (see {@link DurableBarrier.afterSync}). */
  lost: (() => void) | undefined;
}

export class DurableBarrier {
  readonly #source: DurabilitySource;
  readonly #report: (err: unknown) => void;
  /** Every commit up to this count is durable. */
  #durable: number;
  #flushing = false;
  #waiters: Waiter[] = [];
  #deferred: Deferred[] = [];
  #closed = false;
  /** Completed flushes (for tests and metrics). */
  syncs = 0;
  /** Failed flushes, seconds spent in flushes (completed or not), and the answers and events they released (metrics). */
  readonly totals = { failures: 0, seconds: 0, released: 0 };

  /**
   * @param options.durableNow whether the commits made before construction are already durable (true when
   *   the caller knows; else the first wait syncs them).
   * @param options.onDeferredError called when a function given to {@link afterSync} throws.
   */
  constructor(source: DurabilitySource, options: { durableNow?: boolean; onDeferredError?: (err: unknown) => void } = {}) {
    this.#source = source;
    this.#durable = options.durableNow === true ? source.commitCount() : -1;
    this.#report = options.onDeferredError ?? (() => {});
  }

  /** Whether every commit made so far is known to be durable (no wait needed). */
  isDurable(): boolean {
    return this.#source.commitCount() <= this.#durable;
  }

  /**
   * Resolve once every commit made before this call is durable; reject if the sync that was to
   * cover it failed. Resolves at once when nothing was committed since the last sync.
   */
  syncAfterCommit(): Promise<void> {
    const target = this.#source.commitCount();
    if (target <= this.#durable) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject });
      this.#startFlush();
    });
  }

  /**
   * Run `fn` once every commit made before this call is durable: at once if it already is, else in
   * commit order after the sync that covers it. For events that reveal a transition (hub messages).
   * If that sync fails, `fn` waits for the next successful one. If the commits it waited for did not
   * commit at all (`BatchLostError`), `fn` is dropped — what it would reveal never happened — and
   * `onLost` is called instead, for whoever must still act (a watcher waiting to join).
   */
  afterSync(fn: () => void, onLost?: () => void): void {
    const target = this.#source.commitCount();
    if (target <= this.#durable && this.#deferred.length === 0) {
      fn();
      return;
    }
    this.#deferred.push({ target, run: fn, lost: onLost });
    this.#startFlush();
  }

  /** Wait for the sync in flight and one more covering everything committed; later waits fail. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.syncAfterCommit();
    } finally {
      this.#closed = true;
    }
  }

  #startFlush(): void {
    if (this.#flushing) return; // its completion starts the next round for those who came later
    if (this.#closed) {
      const err = new Error('the database is closed');
      for (const w of this.#waiters.splice(0)) w.reject(err);
      return;
    }
    this.#flushing = true;
    // The sync starts at the end of the turn, so that every request of the turn shares it (and the
    // turn's batch of writes, `turn-batch.ts`, is committed once, by the flush).
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    const startedAt = performance.now();
    // Everything counted now is written to the WAL before the sync starts.
    const target = this.#source.commitCount();
    let flushed: Promise<void>;
    try {
      flushed = this.#source.flush();
    } catch (err) {
      flushed = Promise.reject(err);
    }
    flushed.then(
      () => this.#finish(target, undefined, startedAt),
      (err: unknown) => this.#finish(target, err ?? new Error('sync failed'), startedAt),
    );
  }

  #finish(target: number, error: unknown, startedAt: number): void {
    this.#flushing = false;
    this.totals.seconds += (performance.now() - startedAt) / 1000;
    if (error !== undefined) this.totals.failures++;
    if (error === undefined) {
      this.syncs++;
      if (target > this.#durable) this.#durable = target;
      let ran = 0;
      while (ran < this.#deferred.length && this.#deferred[ran]!.target <= this.#durable) ran++;
      this.totals.released += ran;
      for (const d of this.#deferred.splice(0, ran)) {
        // A failing listener must not stop the others, nor the answers below.
        try {
          d.run();
        } catch (err) {
          this.#report(err);
        }
      }
    }
    // The events of transitions that never committed must not be announced.
    const lost: Deferred[] = [];
    if (error instanceof BatchLostError) {
      const kept: Deferred[] = [];
      for (const d of this.#deferred) (error.includes(d.target) ? lost : kept).push(d);
      this.#deferred = kept;
    }
    const remaining: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.target > target) remaining.push(w);
      else if (error === undefined) {
        this.totals.released++;
        w.resolve();
      } else w.reject(error);
    }
    this.#waiters = remaining;
    // Commits made while this sync ran need the next one. Deferred events of a failed sync wait for
    // the next request to start one, so a broken disk is not hammered in a loop.
    if (this.#waiters.length > 0 || (error === undefined && this.#deferred.length > 0)) this.#startFlush();
    // Last, with the barrier's state settled: these may wait again (afterSync).
    for (const d of lost) {
      try {
        d.lost?.();
      } catch (err) {
        this.#report(err);
      }
    }
  }
}

/**
 * The {@link DurabilitySource} of a WAL-mode SQLite database: `total_changes()` counts commits;
 * a flush is an `fdatasync` of the `-wal` file (see the module comment for why that suffices).
 */
export class WalFlusher implements DurabilitySource {
  readonly #walPath: string;
  readonly #dbPath: string;
  readonly #db: Db;
  #lastCount = 0;
  #checkedAt = 0;
  #wal: { handle: FileHandle; ino: number } | null = null;

  constructor(db: Db) {
    this.#db = db;
    this.#dbPath = db.name;
    this.#walPath = `${db.name}-wal`;
  }

  commitCount(): number {
    // A closed database commits nothing more, and closing it checkpointed (and synced) the WAL.
    if (!this.#db.open) return this.#lastCount;
    this.#lastCount = totalChanges(this.#db);
    return this.#lastCount;
  }

  async flush(): Promise<void> {
    if (!this.#db.open) return;
    commitTurnBatch(this.#db);
    const lost = takeLostBatches(this.#db);
    if (lost !== undefined) throw lost;
    // The writes made while the sync runs go into one commit, made when it completes (turn-batch.ts).
    const release = holdTurnBatches(this.#db);
    try {
      if (this.#wal) {
        // The usual round: one sync. SQLite never replaces the WAL while this connection is open (it
        // removes it only when the last connection closes, and truncates in place), so the look at
        // the path is a safety net against outside interference, taken at most once a second: a stat
        // every round cost 3 % of the server's CPU under the lifecycle load.
        const now = Date.now();
        if (now - this.#checkedAt < INODE_CHECK_INTERVAL_MS) return await this.#wal.handle.datasync();
        this.#checkedAt = now;
        const [current] = await Promise.all([inodeOf(this.#walPath), this.#wal.handle.datasync()]);
        if (current === this.#wal.ino) return;
      }
      await this.#reopen();
    } finally {
      release();
    }
  }

  /** (Re)open the WAL, make its directory entry durable, sync it and the database file. */
  async #reopen(): Promise<void> {
    const old = this.#wal;
    this.#wal = null;
    await old?.handle.close().catch(() => {});
    let handle: FileHandle | null = null;
    try {
      handle = await open(this.#walPath, 'r');
    } catch (err) {
      // No WAL file: every commit is in the database file (a checkpoint on close removed the WAL).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      if (handle) await handle.datasync();
      await syncFile(this.#dbPath);
      await syncFile(dirname(this.#dbPath));
      if (handle) this.#wal = { handle, ino: (await handle.stat()).ino };
    } catch (err) {
      await handle?.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#wal?.handle.close();
    this.#wal = null;
  }
}

/** How often a sync round checks that the `-wal` path still names the file it syncs. */
const INODE_CHECK_INTERVAL_MS = 1000;

async function inodeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** A barrier on `db`'s WAL; `close()` it (after the last write) before closing the database. */
export function walBarrier(db: Db, log: Pick<Logger, 'error'>): { barrier: DurableBarrier; close(): Promise<void> } {
  const flusher = new WalFlusher(db);
  const barrier = new DurableBarrier(flusher, {
    onDeferredError: (err) => log.error({ err }, 'an event emitted after a sync failed'),
  });
  return {
    barrier,
    async close() {
      try {
        await barrier.close();
      } finally {
        await flusher.close();
      }
    },
  };
}
