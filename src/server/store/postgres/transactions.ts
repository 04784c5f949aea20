/**
 * Transactions on PostgreSQL, and the durability every acknowledged one needs.
 *
 * A transition reads the job's row `FOR UPDATE` first: a second replica's transition on the same job
 * waits for the first to commit and then reads the committed row, so the checks of `jobs.ts` see what
 * SQLite's `BEGIN IMMEDIATE` makes them see, across any number of replicas. The answer leaves only
 * after `COMMIT` returns, and with `synchronous_commit` on (checked at start) that means the commit
 * is on the server's disk (and its synchronous standbys', where configured).
 */
import type pg from 'pg';
import { UfdlError } from '../../../protocol/errors.js';
import { acquireVerdict } from '../jobs.js';
import type { JobRow } from '../job-json.js';

/** The job read of `job-json.ts`, with the meta flag as the 0/1 integer SQLite gives. */
export const PG_JOB_SELECT = `
  SELECT jobs.*, t.name AS template_name, t.version AS template_version, (t.graph IS NOT NULL)::int AS template_is_meta
  FROM jobs JOIN templates t ON t.pk = jobs.template`;

/** Run `fn` in one transaction on one connection: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}

/** The job's row, locked until the transaction ends; 404 when there is none. */
export async function lockJobRow(client: pg.PoolClient, pk: number): Promise<JobRow> {
  const { rows } = await client.query<JobRow>(`${PG_JOB_SELECT} WHERE jobs.pk = $1 FOR UPDATE OF jobs`, [pk]);
  const row = rows[0];
  if (!row) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
  return row;
}

/**
 * acquire on PostgreSQL: the checks of {@link acquireVerdict} on the locked row, then the write, in
 * one transaction. Of any number of nodes acquiring one job at once, on any replicas, one gets the
 * job and the others `UFDL_ERR_JOB_ACQUIRED`. Returns the job's row as committed.
 */
export async function acquireJobPostgres(pool: pg.Pool, pk: number, nodePk: number): Promise<JobRow> {
  return inTransaction(pool, async (client) => {
    const job = await lockJobRow(client, pk);
    const verdict = acquireVerdict(job, nodePk);
    if (verdict === 'held') return job;
    if (verdict !== 'take') throw verdict;
    await client.query('UPDATE jobs SET node = $1 WHERE pk = $2', [nodePk, pk]);
    // Taken: why nodes skipped it is history now.
    await client.query('DELETE FROM job_waits WHERE job = $1', [pk]);
    return { ...job, node: nodePk };
  });
}

/**
 * Refuse a database on which a commit may be acknowledged before it is durable: `fsync` off, or
 * `synchronous_commit` off (for the server, this database or this user). The server promises that an
 * answered transition survives a crash; on such a database it could not keep that promise.
 */
export async function checkDurability(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')",
  );
  const settings = new Map(rows.map((row) => [row.name, row.setting]));
  if (settings.get('fsync') === 'off') throw new Error('PostgreSQL runs with fsync = off: an acknowledged transition could be lost; refusing to serve on it.');
  if (settings.get('synchronous_commit') === 'off') {
    throw new Error('PostgreSQL runs with synchronous_commit = off for this database or user: an acknowledged transition could be lost; refusing to serve on it.');
  }
}
