/**
 * `POST …/list` for jobs and job outputs: a filter spec compiled against the resource's field table
 * (unknown fields → 400 before anything runs), then a plain SELECT.
 */
import { filterCost, searchesText, type FilterSpec } from '../../protocol/filter.js';
import type { JobJson, JobOutputJson } from '../../protocol/wire.js';
import type { WaitFilter, WaitFilterBase } from '../wake-up/wake-hub.js';
import { cachedStatement, recentStatement, type Db } from './db.js';
import { compileFilter } from './filter-sql.js';
import { JOB_FIELDS, OUTPUT_FIELDS } from './job-fields.js';
import { isWaiting, JOB_SELECT, jobJson, outputJson, type JobRow, type OutputRow } from './job-json.js';
import { waitingOf } from './job-waits.js';
import { splitPkExclusions } from './pk-exclusions.js';
import type { GuardedSql, TextSearches } from './text-searches.js';

/** A compiled job list filter: run it, or ask whether one job is in its result (the wake-up hub's question). */
export interface JobListQuery extends WaitFilter {
  /** The jobs matching the filter, in order; the first `limit` of them when given. */
  run(limit?: number): JobJson[];
  /**
   * The filter searches text (`searchesText`): {@link search} runs it, off the event loop; {@link run}
   * would hold the server for as long as the search takes.
   */
  readonly searchesText: boolean;
  /** The same list as {@link run}, its SELECT run by `searches` for `user`. */
  search(searches: TextSearches, user: number, limit?: number): Promise<JobJson[]>;
  readonly base: WaitFilterBase;
  readonly excluded: ReadonlySet<number>;
}

/**
 * Compile the job list query and return what runs it; the `X-UFDL-Wait` loop runs it again after a
 * wake-up. Throws the 400 for unknown fields at compile time. Statements are kept compiled for the
 * filters in recent use, since nodes send the same poll filter over and over.
 *
 * For the wake-up hub the filter is also split into its base and the pks it excludes
 * (`pk-exclusions.ts`): filters that differ only in those share one question to the database per
 * job. The list itself always runs the whole filter.
 */
export function prepareJobList(db: Db, spec: FilterSpec): JobListQuery {
  const { listSql, matchSql, where, params, orderBy } = jobListSql(spec);
  const split = splitPkExclusions(spec, JOB_FIELDS, 'jobs.pk');
  const base = split.excluded.length === 0 ? jobListBase(db, spec, { matchSql, where, params }) : jobListBase(db, split.base);
  const excluded = new Set(split.excluded);
  return {
    // Equal keys, equal result sets: the base's, less the same pks in whatever order they were written.
    key: excluded.size === 0 ? base.key : `${base.key}\nexcluding ${[...excluded].sort((a, b) => a - b).join(',')}`,
    base,
    excluded,
    run(limit) {
      const rows = (
        limit === undefined ? recentStatement(db, listSql).all(...params) : recentStatement(db, `${listSql} LIMIT ?`).all(...params, limit)
      ) as JobRow[];
      return jobsWithOutputs(db, rows);
    },
    searchesText: searchesText(spec),
    async search(searches, user, limit) {
      const sql: GuardedSql = (guard) => `${JOB_SELECT} WHERE ${guard('jobs.pk')} AND ${guard('t.pk')} AND (${where}) ORDER BY ${orderBy}${limit === undefined ? '' : ' LIMIT ?'}`;
      const rows = await searches.all<JobRow>(user, sql, limit === undefined ? params : [...params, limit]);
      return jobsWithOutputs(db, rows);
    },
    matches(jobPk) {
      return !excluded.has(jobPk) && base.matches(jobPk);
    },
  };
}

/** The wake-up hub's view of a filter without pk exclusions: one indexed question per job. */
function jobListBase(db: Db, spec: FilterSpec, compiled: { matchSql: string; where: string; params: unknown[] } = jobListSql(spec)): WaitFilterBase {
  const { matchSql, where, params } = compiled;
  return {
    // The result set depends on the WHERE clause and its values only, not on the order.
    key: `${where}\n${JSON.stringify(params)}`,
    cost: filterCost(spec),
    matches(jobPk) {
      return recentStatement(db, matchSql).get(...params, jobPk) !== undefined;
    },
  };
}

/**
 * The SQL of a job list (`LIMIT ?` appended when limited, the limit bound after `params`), and of the
 * question whether one job (`jobs.pk = ?`, bound after `params`) is in its result.
 */
export function jobListSql(spec: FilterSpec): { listSql: string; matchSql: string; where: string; params: unknown[]; orderBy: string } {
  const { where, params, orderBy } = compileFilter(spec, JOB_FIELDS, {
    softDeleteColumn: 'jobs.deletion_time',
    defaultOrder: 'jobs.pk ASC',
  });
  return {
    listSql: `${JOB_SELECT} WHERE ${where} ORDER BY ${orderBy}`,
    matchSql: `SELECT 1 FROM jobs JOIN templates t ON t.pk = jobs.template WHERE (${where}) AND jobs.pk = ?`,
    where,
    params,
    orderBy,
  };
}

/** The SQL that reads the live outputs of listed jobs (a JSON array of their pks). */
export const LISTED_OUTPUTS_SQL = `SELECT * FROM outputs WHERE removed = 0 AND deletion_time IS NULL
       AND job IN (SELECT value FROM json_each(?)) ORDER BY pk`;

/**
 * The JSON of listed jobs, with one query for the outputs of them all instead of one per job, and
 * likewise one for the reasons nodes gave for not taking the jobs that still wait.
 */
function jobsWithOutputs(db: Db, rows: JobRow[]): JobJson[] {
  if (rows.length === 0) return [];
  const outputs = new Map<number, OutputRow[]>();
  const outputsOf = cachedStatement(db, LISTED_OUTPUTS_SQL);
  for (const output of outputsOf.all(JSON.stringify(rows.map((r) => r.pk))) as OutputRow[]) {
    const list = outputs.get(output.job);
    if (list) list.push(output);
    else outputs.set(output.job, [output]);
  }
  const waiting = waitingOf(db, rows.filter(isWaiting).map((r) => r.pk));
  return rows.map((row) => jobJson(db, row, outputs.get(row.pk) ?? [], waiting.get(row.pk)));
}

/**
 * Job outputs matching the filter. Outputs set aside by reset/abort count as inactive: they are
 * listed only with `include_inactive`, like soft-deleted ones.
 */
export function listOutputs(db: Db, spec: FilterSpec): JobOutputJson[] {
  const { where, params, orderBy } = compileFilter(spec, OUTPUT_FIELDS, { defaultOrder: 'outputs.pk ASC' });
  const active = spec.include_inactive ? '' : ' AND outputs.deletion_time IS NULL AND outputs.removed = 0';
  const rows = db
    .prepare(`SELECT outputs.* FROM outputs JOIN jobs j ON j.pk = outputs.job WHERE (${where})${active} ORDER BY ${orderBy}`)
    .all(...params) as OutputRow[];
  return rows.map(outputJson);
}
