/**
 * The progress of each job over time, for the dashboard's curves: every `progress` notification
 * becomes one row of `progress_points` (the job, its attempt, and the point `{"t": ms, "p": progress,
 * "d": {numbers}}`). Only the numeric values of the progress metadata are kept (nested objects
 * flattened to dotted keys), so a point stays small whatever a job sends. An attempt's history over
 * {@link MAX_POINTS} is thinned to every other point, so a week-long job keeps its whole curve at a
 * coarser step instead of growing without end. A new attempt of a job (reset, abort and start
 * again) drops the points of the earlier ones; deleting the job drops them all (a foreign key).
 *
 * Why the database and not a file beside the live log, as before: a file per attempt meant making
 * its directory and opening it, four thread-pool round trips per job whose system calls wait on the
 * file system's journal. Under the lifecycle load they cost a tenth of the server's CPU
 * (docs/BENCHMARKS.md); a row is written with the turn's other commits, in the same sync. The points
 * recorded together go in one statement per power of two (at most {@link INSERT_ROWS_MAX} rows),
 * because on PostgreSQL each statement is a round trip; there they are no transaction either (they
 * need none, and it would take the writers' lock).
 *
 * Points are written after the transition is answered, on the hub's notification: a history is a
 * view for people, not part of the job's durable record (the last progress is, in the job's row).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProgressPoint } from '../../protocol/dashboard.js';
import { cachedStatement, writeWithTurn, type Db } from '../store/db.js';
import type { LogKey } from './store.js';

/** Points kept per attempt: past it, every other one is dropped (the latest always kept). */
const MAX_POINTS = 10_000;
/** How many points of a job this process records between two counts of its history. */
const COUNT_EVERY = 1_000;
const MAX_KEYS = 32;
const MAX_KEY_LENGTH = 64;
/** Attempts remembered (whose older attempts were dropped, and their points counted); oldest forgotten first. */
const KNOWN_ATTEMPTS_MAX = 4096;
/** The largest single insert. Inserts take 1, 2, 4 … 64 rows: seven statement texts, each compiled once. */
const INSERT_ROWS_MAX = 64;

interface Pending {
  pk: number;
  attempt: string;
  point: string;
}

export class ProgressHistory {
  readonly #db: Db;
  readonly #legacyDir: (key: LogKey) => string | undefined;
  /** Points not yet written, in the order they came. */
  #pending: Pending[] = [];
  /** The write of the points queued now (a microtask after the code that records them); null when none is queued. */
  #next: Promise<void> | null = null;
  /** Per job, the attempt this process has seen, and how many of its points it wrote since the last count. */
  readonly #attempts = new Map<number, { attempt: string; sinceCount: number }>();
  #closed = false;

  /**
   * @param legacyDir where an earlier version kept the attempt's history as `progress.jsonl` (the
   *   live log's attempt directory), read when the database has no point of the attempt.
   */
  constructor(db: Db, legacyDir: (key: LogKey) => string | undefined) {
    this.#db = db;
    this.#legacyDir = legacyDir;
  }

  /** Record a point; resolves once it is written with the others of its turn. Failures are the caller's to log. */
  record(key: LogKey, progress: number, data: Record<string, unknown>): Promise<void> {
    if (key.startTime === null) return Promise.reject(new Error(`job ${key.pk} has not started: it has no progress history`));
    if (this.#closed) return Promise.reject(new Error('the progress history is closed'));
    const point = JSON.stringify({ t: Date.now(), p: progress, d: numericLeaves(data) } satisfies ProgressPoint);
    this.#pending.push({ pk: key.pk, attempt: key.startTime, point });
    // After the code that records (the hub delivers a sync's notifications in one go), in the same
    // turn: on SQLite the points join the turn's batch of writes and its commit (store/turn-batch.ts);
    // at the next turn they were a commit of their own, with its locks and WAL frames.
    this.#next ??= new Promise<void>((resolve, reject) => {
      queueMicrotask(() => {
        this.#next = null;
        try {
          this.#writePending();
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    return this.#next;
  }

  /** The job's attempt ended (finished, reset, aborted…): nothing more to remember of it. */
  forget(pk: number): void {
    this.#attempts.delete(pk);
  }

  /** Write the points still queued; later points are refused (the server waits for this before it closes). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#next?.catch(() => undefined);
  }

  /** The points of the attempt, oldest first; `[]` when there are none. */
  async read(key: LogKey): Promise<ProgressPoint[]> {
    if (key.startTime === null) return [];
    const rows = cachedStatement(this.#db, 'SELECT point FROM progress_points WHERE job = ? AND attempt = ? ORDER BY pk').all(key.pk, key.startTime) as { point: string }[];
    if (rows.length > 0) return rows.map((row) => JSON.parse(row.point) as ProgressPoint);
    return readLegacyFile(this.#legacyDir(key));
  }

  #writePending(): void {
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length === 0 || !this.#db.open) return;
    const toCount: Pending[] = [];
    writeWithTurn(this.#db, () => {
      // A job's first point of an attempt seen by this process drops its earlier attempts' points.
      for (const p of pending) {
        const known = this.#attempts.get(p.pk);
        if (known?.attempt === p.attempt) {
          if (++known.sinceCount >= COUNT_EVERY) {
            known.sinceCount = 0;
            toCount.push(p);
          }
          continue;
        }
        cachedStatement(this.#db, 'DELETE FROM progress_points WHERE job = ? AND attempt <> ?').run(p.pk, p.attempt);
        this.#attempts.delete(p.pk);
        this.#attempts.set(p.pk, { attempt: p.attempt, sinceCount: 1 });
        if (this.#attempts.size > KNOWN_ATTEMPTS_MAX) this.#attempts.delete(this.#attempts.keys().next().value!);
      }
      for (let from = 0; from < pending.length; ) {
        const rows = Math.min(INSERT_ROWS_MAX, 2 ** Math.floor(Math.log2(pending.length - from)));
        const values: unknown[] = [];
        for (const p of pending.slice(from, from + rows)) values.push(p.pk, p.attempt, p.point);
        cachedStatement(this.#db, insertSql(rows)).run(...values);
        from += rows;
      }
      for (const p of toCount) this.#thinIfLong(p.pk, p.attempt);
    });
  }

  /** Over {@link MAX_POINTS}: drop every other point, counting from the latest (which stays). */
  #thinIfLong(pk: number, attempt: string): void {
    const { n } = cachedStatement(this.#db, 'SELECT COUNT(*) AS n FROM progress_points WHERE job = ? AND attempt = ?').get(pk, attempt) as { n: number };
    if (n <= MAX_POINTS) return;
    cachedStatement(
      this.#db,
      `DELETE FROM progress_points WHERE pk IN (
         SELECT pk FROM (SELECT pk, ROW_NUMBER() OVER (ORDER BY pk DESC) AS n FROM progress_points WHERE job = ? AND attempt = ?) AS ranked
         WHERE n % 2 = 0)`,
    ).run(pk, attempt);
  }
}

/** The texts made so far, by rows: the statement cache looks a text up by value, and a text made anew is hashed anew. */
const INSERT_SQL: string[] = [];

function insertSql(rows: number): string {
  return (INSERT_SQL[rows] ??= insertSqlText(rows));
}

/**
 * An insert of `rows` points, their pks in the order given (PostgreSQL numbers the rows in the order
 * its plan produces them, which the join with `jobs` may change: hence the position and the ORDER
 * BY). A point of a job deleted meanwhile is skipped (its foreign key would fail the whole statement,
 * and with it the other jobs' points). The casts give PostgreSQL the columns' types.
 */
function insertSqlText(rows: number): string {
  const values = Array.from({ length: rows }, (_, i) => `(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), ${i})`).join(', ');
  return `INSERT INTO progress_points (job, attempt, point)
    SELECT v.column1, v.column2, v.column3 FROM (VALUES ${values}) AS v
    WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.pk = v.column1)
    ORDER BY v.column4`;
}

/** An attempt's history as an earlier version wrote it (one JSON line a point); `[]` when there is none. */
async function readLegacyFile(dir: string | undefined): Promise<ProgressPoint[]> {
  if (dir === undefined) return [];
  let text: string;
  try {
    text = await readFile(join(dir, 'progress.jsonl'), 'utf8');
  } catch {
    return [];
  }
  const points: ProgressPoint[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      points.push(JSON.parse(line) as ProgressPoint);
    } catch {
      // A line cut by a crash mid-write: skip it.
    }
  }
  return points;
}

/** `{"loss": 0.1, "m": {"acc": 0.9}, "name": "x"}` → `{"loss": 0.1, "m.acc": 0.9}`. */
export function numericLeaves(data: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  let count = 0;
  const walk = (value: unknown, prefix: string, depth: number) => {
    if (count >= MAX_KEYS || depth > 4) return;
    if (typeof value === 'number' && Number.isFinite(value) && prefix !== '' && prefix.length <= MAX_KEY_LENGTH) {
      out[prefix] = value;
      count++;
      return;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, prefix === '' ? k : `${prefix}.${k}`, depth + 1);
    }
  };
  walk(data, '', 0);
  return out;
}
