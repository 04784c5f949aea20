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

/**
 * One page: `before` a pk (older), `after` one (newer), or the newest. Soft-deleted jobs are left
 * out. The count of matching jobs, and of those newer than the page, are read with it.
 */
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
  const ascending = query.after !== undefined && query.before === undefined;
  const cursor = ascending ? 'jobs.pk > ?' : query.before !== undefined ? 'jobs.pk < ?' : '1 = 1';
  const cursorParams = ascending ? [query.after!] : query.before !== undefined ? [query.before] : [];
  const sql = `${JOB_SELECT} WHERE ${where} AND ${cursor} ORDER BY jobs.pk ${ascending ? 'ASC' : 'DESC'} LIMIT ?`;
  const rows = cachedStatement(db, sql).all(...params, ...cursorParams, limit) as JobRow[];
  if (ascending) rows.reverse();
  const count = (extra: string, extraParams: number[]) =>
    (cachedStatement(db, `SELECT count(*) AS n FROM jobs WHERE ${where}${extra}`).get(...params, ...extraParams) as { n: number }).n;
  const total = count('', []);
  // Counted, not only whether there are any: the page keeps the count as jobs come and go on other
  // pages (src/ui/table-feed.ts), so its paging buttons stay true without loading it again. Nothing
  // is newer than the newest page.
  const newest = ascending ? query.after! : query.before !== undefined ? query.before - 1 : undefined;
  const above = newest === undefined ? undefined : (rows[0]?.pk ?? newest);
  const newerCount = above === undefined ? 0 : count(' AND jobs.pk > ?', [above]);
  return {
    rows: rows.map(summaryOf),
    total,
    newer: newerCount,
    has_older: total - newerCount - rows.length > 0,
    has_newer: newerCount > 0,
  };
}
