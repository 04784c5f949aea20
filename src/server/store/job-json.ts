/**
 * Reading jobs and job outputs from the database and shaping them as the reference's JSON.
 * Shared by the jobs, templates (create-job), job-outputs and ws routes.
 */
import { UfdlError } from '../../protocol/errors.js';
import { phaseOf } from '../../protocol/phase.js';
import type { JobJson, JobOutputJson, JobWaiting, TypedValue } from '../../protocol/wire.js';
import { type Db } from './db.js';
import { cachedRows } from './row-reader.js';
import { waitingOf } from './job-waits.js';

export interface JobRow {
  pk: number;
  template: number;
  parent: number | null;
  description: string;
  input_values: string;
  parameter_values: string | null;
  node: number | null;
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  progress_amount: number;
  cancelled_unstarted: number;
  creator: number | null;
  creation_time: string;
  deletion_time: string | null;
  /** The node of its parent's workflow graph this job runs; null for a top-level job. */
  child_name: string | null;
  /** Joined from templates. */
  template_name: string;
  template_version: number;
  /** 1 when the template is a meta-template (the job is a workflow's parent), else 0. */
  template_is_meta: number;
}

/**
 * A job's row without its values: what a summary of the job shows (the dashboard's), small enough to
 * travel with a hub event to another replica once the row itself is gone (a hard delete).
 */
export type JobRowShown = Omit<JobRow, 'input_values' | 'parameter_values'>;

export interface OutputRow {
  pk: number;
  job: number;
  name: string;
  type: string;
  sha256: string;
  size: number;
  creator: number | null;
  creation_time: string;
  deletion_time: string | null;
  removed: number;
}

const JOB_COLUMNS = 'jobs.*, t.name AS template_name, t.version AS template_version, t.graph IS NOT NULL AS template_is_meta';
const JOB_FROM = 'FROM jobs JOIN templates t ON t.pk = jobs.template';

/** The SELECT every job read uses; filters append `WHERE …` over the aliases `jobs` and `t`. */
export const JOB_SELECT = `SELECT ${JOB_COLUMNS} ${JOB_FROM}`;

// Constants, not template literals in the calls: the statement cache looks the text up on every read.
const JOB_BY_PK_SQL = `${JOB_SELECT} WHERE jobs.pk = ?`;
const JOB_AND_NODE_SQL = `SELECT ${JOB_COLUMNS}, n.pk AS acting_node_pk, n.current_job AS acting_node_current_job
  ${JOB_FROM} LEFT JOIN nodes n ON n.pk = ? WHERE jobs.pk = ?`;

export function getJobRow(db: Db, pk: number): JobRow | undefined {
  return cachedRows<JobRow>(db, JOB_BY_PK_SQL).get(pk);
}

/** A job row read together with what a transition needs of the node acting on it. */
export interface JobRowWithNode extends JobRow {
  /** The acting node's pk; null when there is no such node. */
  acting_node_pk: number | null;
  acting_node_current_job: number | null;
}

/**
 * Job `pk` and node `nodePk`'s `current_job` in one statement: start, progress, finish and release
 * read both in their transaction, and a statement is most of what such a read costs.
 * @throws UfdlError 404 `Not found.` when the job does not exist
 */
export function requireJobRowWithNode(db: Db, pk: number, nodePk: number): JobRowWithNode {
  const row = cachedRows<JobRowWithNode>(db, JOB_AND_NODE_SQL).get(nodePk, pk);
  if (!row) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
  return row;
}

/** The job row, or 404 `Not found.` like the reference. Soft-deleted jobs are found. */
export function requireJobRow(db: Db, pk: number): JobRow {
  const row = getJobRow(db, pk);
  if (!row) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
  return row;
}

/**
 * Outputs that count: not removed by reset/abort and not soft-deleted (docs/COMPATIBILITY.md, bugs B5/B6). The
 * reference lists every output ever added; we list the live ones so a re-run can upload again.
 */
export function liveOutputs(db: Db, jobPk: number): OutputRow[] {
  // Every job JSON runs this.
  return cachedRows<OutputRow>(db, 'SELECT * FROM outputs WHERE job = ? AND removed = 0 AND deletion_time IS NULL ORDER BY pk').all(jobPk);
}

/** The databases of servers that offer the extensions (strict-reference mode does not): see {@link jobJson}. */
const extendedJson = new WeakSet<Db>();

/** Job JSON read from `db` carries this project's extension fields (set once, as the server starts). */
export function offerJobJsonExtensions(db: Db): void {
  extendedJson.add(db);
}

/** Whether the job waits for a node: not acquired, not started, not ended. */
export function isWaiting(row: Pick<JobRow, 'node' | 'start_time' | 'end_time' | 'cancelled_unstarted'>): boolean {
  return row.node === null && row.start_time === null && row.end_time === null && row.cancelled_unstarted === 0;
}

/**
 * The job JSON. `outputs`: the job's live outputs when the caller already has them (lists batch them);
 * `waiting`: likewise the reasons nodes gave for not taking it, shown while it waits. On a server
 * with the extensions, a running job's JSON also carries its `progress`.
 */
export function jobJson(
  db: Db,
  row: JobRow,
  outputs: readonly OutputRow[] = liveOutputs(db, row.pk),
  waiting: readonly JobWaiting[] | undefined = isWaiting(row) ? waitingOf(db, [row.pk]).get(row.pk) : undefined,
): JobJson {
  const phase = phaseOf(row);
  const json: JobJson = {
    pk: row.pk,
    template: { pk: row.template, name: row.template_name, version: row.template_version },
    parent: row.parent,
    start_time: row.start_time,
    end_time: row.end_time,
    error_reason: row.error_reason,
    input_values: JSON.parse(row.input_values) as Record<string, TypedValue>,
    parameter_values: row.parameter_values === null ? null : (JSON.parse(row.parameter_values) as Record<string, TypedValue>),
    node: row.node,
    outputs: outputs.map((o) => ({ pk: o.pk, name: o.name, type: o.type })),
    description: row.description,
    // B4: a job cancelled before it started is really cancelled here.
    is_cancelled: phase === 'CANCELLED' || row.cancelled_unstarted === 1,
    creator: row.creator,
    creation_time: row.creation_time,
    deletion_time: row.deletion_time,
  };
  if (waiting !== undefined && waiting.length > 0 && isWaiting(row)) json.waiting = [...waiting];
  // The reference's job has no progress (only its notifications do): a list of running jobs could
  // not say how far each is without it.
  if (row.start_time !== null && row.end_time === null && extendedJson.has(db)) json.progress = row.progress_amount;
  return json;
}

export function loadJobJson(db: Db, pk: number): JobJson {
  return jobJson(db, requireJobRow(db, pk));
}

export function outputJson(row: OutputRow): JobOutputJson {
  return {
    pk: row.pk,
    job: row.job,
    name: row.name,
    type: row.type,
    creator: row.creator,
    creation_time: row.creation_time,
    deletion_time: row.deletion_time,
  };
}
