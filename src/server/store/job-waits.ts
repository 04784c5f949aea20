/**
 * Why a job waits (an extension): a node that polls a job and cannot run it — an executor it lacks,
 * a template it refuses — says so, and the job's JSON carries the reasons while it still waits, so
 * that the submitter learns why nothing happens instead of waiting forever. One reason per node; a
 * node that reports again replaces its own.
 */
import type { JobWaiting } from '../../protocol/wire.js';
import { cachedStatement, nowIso, type Db } from './db.js';

/** The longest reason kept. */
export const MAX_WAIT_REASON_LENGTH = 1000;

/**
 * Record `node`'s reason; false when the node no longer exists. The request was identified as that
 * node before its body arrived, and the node may have been deleted meanwhile: its row would then fail
 * the foreign key (a 500), so the insert takes the node from its row.
 */
export function recordWaiting(db: Db, job: number, node: number, reason: string): boolean {
  const { changes } = cachedStatement(
    db,
    `INSERT INTO job_waits (job, node, reason, since) SELECT ?, pk, ?, ? FROM nodes WHERE pk = ?
     ON CONFLICT (job, node) DO UPDATE SET reason = excluded.reason, since = CASE WHEN job_waits.reason = excluded.reason THEN job_waits.since ELSE excluded.since END`,
  ).run(job, reason.slice(0, MAX_WAIT_REASON_LENGTH), nowIso(), node);
  return changes > 0;
}

/** The reasons recorded for each of `jobs` (only jobs that have some). */
export function waitingOf(db: Db, jobs: readonly number[]): Map<number, JobWaiting[]> {
  const found = new Map<number, JobWaiting[]>();
  if (jobs.length === 0) return found;
  const rows = cachedStatement(db, 'SELECT job, node, reason, since FROM job_waits WHERE job IN (SELECT value FROM json_each(?)) ORDER BY job, node').all(
    JSON.stringify(jobs),
  ) as { job: number; node: number; reason: string; since: string }[];
  for (const { job, ...waiting } of rows) {
    const list = found.get(job);
    if (list) list.push(waiting);
    else found.set(job, [waiting]);
  }
  return found;
}

/** The job was taken: its reasons no longer apply. */
export function forgetWaiting(db: Db, job: number): void {
  cachedStatement(db, 'DELETE FROM job_waits WHERE job = ?').run(job);
}
