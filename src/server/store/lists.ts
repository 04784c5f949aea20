/**
 * `POST …/list` for jobs and job outputs: a filter spec compiled against the resource's field table
 * (unknown fields → 400 before anything runs), then a plain SELECT.
 */
import type { FilterSpec } from '../../protocol/filter.js';
import type { JobJson, JobOutputJson } from '../../protocol/wire.js';
import type { Db } from './db.js';
import { compileFilter } from './filter-sql.js';
import { JOB_FIELDS, OUTPUT_FIELDS } from './job-fields.js';
import { isWaiting, JOB_SELECT, jobJson, outputJson, type JobRow, type OutputRow } from './job-json.js';
import { waitingOf } from './job-waits.js';

/**
 * Compile the job list query once and return a function that runs it; the `X-UFDL-Wait` loop runs
 * it again after every wake-up. Throws the 400 for unknown fields at compile time.
 */
export function prepareJobList(db: Db, spec: FilterSpec): () => JobJson[] {
  const { where, params, orderBy } = compileFilter(spec, JOB_FIELDS, {
    softDeleteColumn: 'jobs.deletion_time',
    defaultOrder: 'jobs.pk ASC',
  });
  const statement = db.prepare(`${JOB_SELECT} WHERE ${where} ORDER BY ${orderBy}`);
  const outputsOf = db.prepare(
    `SELECT * FROM outputs WHERE removed = 0 AND deletion_time IS NULL
       AND job IN (SELECT value FROM json_each(?)) ORDER BY pk`,
  );
  return () => {
    const rows = statement.all(...params) as JobRow[];
    if (rows.length === 0) return [];
    // One query for the outputs of every listed job, instead of one per job.
    const outputs = new Map<number, OutputRow[]>();
    for (const output of outputsOf.all(JSON.stringify(rows.map((r) => r.pk))) as OutputRow[]) {
      const list = outputs.get(output.job);
      if (list) list.push(output);
      else outputs.set(output.job, [output]);
    }
    // Likewise the reasons nodes gave for not taking the jobs that still wait.
    const waiting = waitingOf(db, rows.filter(isWaiting).map((r) => r.pk));
    return rows.map((row) => jobJson(db, row, outputs.get(row.pk) ?? [], waiting.get(row.pk)));
  };
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
