/**
 * Which attempt of a job its progress points belong to (`LogKey`: the job and its start time), for
 * the progress history. Every progress notification needs it; reading the job's row for it was a
 * statement of its own (with the database's read locks) on 10 of a job's 15 requests. A job's start
 * time changes only through a transition that is itself notified (start, reset, abort), so the key
 * read at a job's first progress is kept until the job's next transition of any other kind.
 *
 * Only where notifications are this process's own (SQLite): with replicas, a start on another
 * replica could reach this one after a progress it must already file under the new attempt.
 */
import type { Db } from '../store/db.js';
import { getJobRow } from '../store/job-json.js';
import type { LogKey } from './store.js';

/** Jobs whose key is kept at most; a job that stops getting notifications (deleted) ages out. */
const KEPT_MAX = 4096;

export class AttemptKeys {
  readonly #db: Db;
  readonly #remember: boolean;
  readonly #keys = new Map<number, LogKey>();

  constructor(db: Db, options: { remember: boolean }) {
    this.#db = db;
    this.#remember = options.remember;
  }

  /** The job's current attempt; undefined if the job no longer exists. */
  keyOf(pk: number): LogKey | undefined {
    const known = this.#keys.get(pk);
    if (known !== undefined) return known;
    const row = getJobRow(this.#db, pk);
    if (row === undefined) return undefined;
    const key = { pk: row.pk, startTime: row.start_time };
    if (this.#remember) {
      // Oldest first (a Map keeps insertion order).
      if (this.#keys.size >= KEPT_MAX) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(pk, key);
    }
    return key;
  }

  /** A transition other than progress happened to job `pk`: its start time may have changed. */
  forget(pk: number): void {
    this.#keys.delete(pk);
  }
}
