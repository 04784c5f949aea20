/**
 * How the writer builds and stores rows: the SQL it runs and the pure row transformations, kept
 * apart so journal.ts reads as the lifecycle rules only.
 */
import type { JobFields, JobRow, NewJob } from './records.js';
import type { JobState } from './states.js';

export const SQL = {
  selectJob: `SELECT * FROM jobs WHERE server_url = ? AND job_pk = ?`,
  insertJob: `INSERT OR REPLACE INTO jobs (server_url, job_pk, node_pk, template_pk, state, slot, job_dir, pid,
    pid_start, exit_code, exit_signal, finish_decided, finish_error, finish_requeue, attempts, runs, restarts,
    last_progress, last_error, state_times, created_at, updated_at, state_since)
    VALUES (@server_url, @job_pk, @node_pk, @template_pk, @state, @slot, @job_dir, @pid, @pid_start, @exit_code,
    @exit_signal, @finish_decided, @finish_error, @finish_requeue, @attempts, @runs, @restarts, @last_progress,
    @last_error, @state_times, @created_at, @updated_at, @state_since)`,
  updateJob: `UPDATE jobs SET node_pk = @node_pk, template_pk = @template_pk, state = @state, slot = @slot,
    job_dir = @job_dir, pid = @pid, pid_start = @pid_start, exit_code = @exit_code, exit_signal = @exit_signal,
    finish_decided = @finish_decided, finish_error = @finish_error, finish_requeue = @finish_requeue,
    attempts = @attempts, runs = @runs,
    restarts = @restarts, last_progress = @last_progress, last_error = @last_error, state_times = @state_times,
    updated_at = @updated_at, state_since = @state_since
    WHERE server_url = @server_url AND job_pk = @job_pk`,
  insertTransition: `INSERT INTO transitions (server_url, job_pk, attempt, from_state, to_state, at, note)
    VALUES (?, ?, ?, ?, ?, ?, ?)`,
  selectOutput: `SELECT * FROM outputs WHERE server_url = ? AND job_pk = ? AND name = ? AND type = ?`,
  // An upsert, not INSERT OR REPLACE, so a replaced output keeps its place in registration order.
  upsertOutput: `INSERT INTO outputs VALUES (@server_url, @job_pk, @name, @type, @path, @size, @sha256,
    @state, @attempts, @last_error, @created_at, @updated_at)
    ON CONFLICT (server_url, job_pk, name, type) DO UPDATE SET path = excluded.path, size = excluded.size,
    sha256 = excluded.sha256, state = excluded.state, attempts = excluded.attempts, last_error = excluded.last_error,
    updated_at = excluded.updated_at`,
  updateOutputState: `UPDATE outputs SET state = @state, size = @size, sha256 = @sha256, attempts = @attempts,
    last_error = @last_error, updated_at = @updated_at WHERE server_url = @server_url AND job_pk = @job_pk AND name = @name AND type = @type`,
} as const;

/**
 * The row of a new attempt in `acquiring`: fresh, or re-using `existing` (a `done` row) with
 * attempts + 1, its per-attempt fields cleared, and `runs`, `restarts` and `created_at` kept.
 */
export function newAttemptRow(serverUrl: string, job: NewJob, existing: JobRow | undefined, at: string): JobRow {
  return {
    server_url: serverUrl,
    job_pk: job.jobPk,
    node_pk: job.nodePk,
    template_pk: job.templatePk ?? null,
    state: 'acquiring',
    slot: job.slot ?? null,
    job_dir: job.jobDir ?? null,
    pid: null,
    pid_start: null,
    exit_code: null,
    exit_signal: null,
    finish_decided: 0,
    finish_error: null,
    finish_requeue: 0,
    attempts: existing === undefined ? 1 : existing.attempts + 1,
    runs: existing?.runs ?? 0,
    restarts: existing?.restarts ?? 0,
    last_progress: null,
    last_error: null,
    state_times: JSON.stringify({ acquiring: at }),
    created_at: existing?.created_at ?? at,
    updated_at: at,
    state_since: at,
  };
}

/** `row` in state `to` since `at` (the caller has checked the edge); entering `running` counts a run. */
export function enterState(row: JobRow, to: JobState, at: string): JobRow {
  return {
    ...row,
    state: to,
    state_since: at,
    updated_at: at,
    state_times: JSON.stringify({ ...(JSON.parse(row.state_times) as object), [to]: at }),
    runs: row.runs + (to === 'running' ? 1 : 0),
  };
}

/** `row` with `fields` applied (absent keys kept) and `updated_at` set. */
export function applyFields(row: JobRow, fields: JobFields, at: string): JobRow {
  const next: JobRow = { ...row, updated_at: at };
  if (fields.nodePk !== undefined) next.node_pk = fields.nodePk;
  if (fields.templatePk !== undefined) next.template_pk = fields.templatePk;
  if (fields.slot !== undefined) next.slot = fields.slot;
  if (fields.jobDir !== undefined) next.job_dir = fields.jobDir;
  if (fields.pid !== undefined) next.pid = fields.pid;
  if (fields.pidStart !== undefined) next.pid_start = fields.pidStart;
  if (fields.exitCode !== undefined) next.exit_code = fields.exitCode;
  if (fields.exitSignal !== undefined) next.exit_signal = fields.exitSignal;
  if (fields.lastProgress !== undefined) next.last_progress = fields.lastProgress;
  if (fields.lastError !== undefined) next.last_error = fields.lastError;
  if (fields.finish !== undefined) {
    next.finish_decided = fields.finish === null ? 0 : 1;
    next.finish_error = fields.finish === null ? null : fields.finish.error;
    next.finish_requeue = fields.finish?.requeue ? 1 : 0;
  }
  return next;
}
