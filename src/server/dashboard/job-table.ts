/**
 * The dashboard's jobs table: one page of slim job rows, newest first, filtered by state, template
 * or node, paged by primary key (keyset paging: `before`/`after` a pk, never OFFSET), so a page costs
 * the same at job 100 000 as at job 100. The reference's `POST /v1/jobs/list` answers every job
 * with its values and outputs, which at that scale is megabytes per refresh.
 */
import { parseWith } from '../../protocol/error-constructors.js';
import { z } from 'zod';
import type { JobPage, JobSummary } from '../../protocol/dashboard.js';
import { phaseOf, type Phase } from '../../protocol/phase.js';
import { cachedStatement, type Db } from '../store/db.js';
import { JOB_SELECT, type JobRow, type JobRowShown } from '../store/job-json.js';

const STATES = ['created', 'running', 'finished', 'errored', 'cancelled', 'active', 'ended'] as const;

const TableQuerySchema = z.strictObject({
  state: z.enum(STATES).optional(),
  template: z.number().int().positive().optional(),
  node: z.number().int().positive().optional(),
  before: z.number().int().positive().optional(),
  after: z.number().int().nonnegative().optional(),
  limit: z.number().int().min(1).max(500).optional(),
});

export type TableQuery = z.infer<typeof TableQuerySchema>;

/** The SQL of each state filter, from the fields the phase is derived from (`protocol/phase.ts`). */
const STATE_SQL: Record<(typeof STATES)[number], string> = {
  created: 'jobs.start_time IS NULL AND jobs.cancelled_unstarted = 0',
  running: 'jobs.end_time IS NULL AND jobs.start_time IS NOT NULL AND jobs.error_reason IS NULL',
  finished: 'jobs.end_time IS NOT NULL AND jobs.error_reason IS NULL',
  errored: 'jobs.end_time IS NOT NULL AND jobs.error_reason IS NOT NULL',
  cancelled: 'jobs.end_time IS NULL AND (jobs.cancelled_unstarted = 1 OR (jobs.start_time IS NOT NULL AND jobs.error_reason IS NOT NULL))',
  active: 'jobs.end_time IS NULL AND jobs.cancelled_unstarted = 0 AND (jobs.start_time IS NULL OR jobs.error_reason IS NULL)',
  ended: 'NOT (jobs.end_time IS NULL AND jobs.cancelled_unstarted = 0 AND (jobs.start_time IS NULL OR jobs.error_reason IS NULL))',
};

const STATE_OF: Record<Phase, JobSummary['state']> = {
  CREATED: 'created',
  STARTED: 'running',
  FINISHED: 'finished',
  ERRORED: 'errored',
  CANCELLED: 'cancelled',
};

export type { JobPage, JobSummary };

export function summaryOf(row: JobRowShown): JobSummary {
  const phase: Phase = row.cancelled_unstarted === 1 ? 'CANCELLED' : phaseOf(row);
  return {
    pk: row.pk,
    template: { pk: row.template, name: row.template_name, version: row.template_version },
    state: STATE_OF[phase],
    node: row.node,
    progress: row.progress_amount,
    creator: row.creator,
    description: row.description,
    creation_time: row.creation_time,
    start_time: row.start_time,
    end_time: row.end_time,
    error: row.error_reason === null ? null : row.error_reason.split('\n')[0]!.slice(0, 200),
    deleted: row.deletion_time !== null,
  };
}

export function parseTableQuery(body: unknown): TableQuery {
  return parseWith(TableQuerySchema, body ?? {}, 'table query');
}

/** One page: `before` a pk (older), `after` one (newer), or the newest. Soft-deleted jobs are left out. */
export function jobPage(db: Db, query: TableQuery): JobPage {
  const limit = query.limit ?? 50;
  const clauses = ['jobs.deletion_time IS NULL'];
  const params: number[] = [];
  if (query.state) clauses.push(STATE_SQL[query.state]);
  if (query.template !== undefined) {
    clauses.push('jobs.template = ?');
    params.push(query.template);
  }
  if (query.node !== undefined) {
    clauses.push('jobs.node = ?');
    params.push(query.node);
  }
  const where = clauses.map((c) => `(${c})`).join(' AND ');
  const newer = query.after !== undefined && query.before === undefined;
  const cursor = newer ? 'jobs.pk > ?' : query.before !== undefined ? 'jobs.pk < ?' : '1 = 1';
  const cursorParams = newer ? [query.after!] : query.before !== undefined ? [query.before] : [];
  // One row more than the page, to know whether there is another page in that direction.
  const sql = `${JOB_SELECT} WHERE ${where} AND ${cursor} ORDER BY jobs.pk ${newer ? 'ASC' : 'DESC'} LIMIT ?`;
  const fetched = cachedStatement(db, sql).all(...params, ...cursorParams, limit + 1) as JobRow[];
  const more = fetched.length > limit;
  const rows = fetched.slice(0, limit);
  if (newer) rows.reverse();
  const total = (cachedStatement(db, `SELECT count(*) AS n FROM jobs WHERE ${where}`).get(...params) as { n: number }).n;
  return {
    rows: rows.map(summaryOf),
    total,
    has_older: newer ? rows.length > 0 && exists(db, where, params, 'jobs.pk < ?', rows.at(-1)!.pk) : more,
    has_newer: newer ? more : rows.length > 0 && exists(db, where, params, 'jobs.pk > ?', rows[0]!.pk),
  };
}

function exists(db: Db, where: string, params: number[], cursor: string, pk: number): boolean {
  return cachedStatement(db, `SELECT 1 FROM jobs WHERE ${where} AND ${cursor} LIMIT 1`).get(...params, pk) !== undefined;
}
