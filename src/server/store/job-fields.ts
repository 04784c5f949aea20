/**
 * The fields a list filter may name for jobs and job outputs, mapped to SQL over
 * the aliases of `JOB_SELECT` (`jobs`, `t`) and of the outputs query (`outputs`). Anything not listed
 * here is a 400 naming the field (the reference answers 500, bug B14).
 */
import type { FieldTable } from './filter-sql.js';

/** SQL for "this job is cancelled", including a job cancelled before it started (bug B4). */
export const JOB_IS_CANCELLED_SQL =
  '(jobs.cancelled_unstarted = 1 OR (jobs.start_time IS NOT NULL AND jobs.end_time IS NULL AND jobs.error_reason IS NOT NULL))';

export const JOB_FIELDS: FieldTable = {
  pk: { sql: 'jobs.pk', kind: 'int' },
  id: { sql: 'jobs.pk', kind: 'int' },
  // Foreign keys compare by pk, as Django does.
  template: { sql: 'jobs.template', kind: 'int' },
  'template.pk': { sql: 't.pk', kind: 'int' },
  'template.name': { sql: 't.name', kind: 'text' },
  'template.version': { sql: 't.version', kind: 'int' },
  'template.type': { sql: 't.type', kind: 'text' },
  'template.executor_class': { sql: 't.executor_class', kind: 'text' },
  // The reference worker's poll filter asks "is the template workable" with `isnull … invert`: the
  // reference's sub-model relations, non-null exactly for templates of that kind.
  'template.workabletemplate': { sql: 'CASE WHEN t.graph IS NULL THEN t.pk END', kind: 'int' },
  'template.metatemplate': { sql: 'CASE WHEN t.graph IS NOT NULL THEN t.pk END', kind: 'int' },
  parent: { sql: 'jobs.parent', kind: 'int' },
  description: { sql: 'jobs.description', kind: 'text' },
  input_values: { sql: 'jobs.input_values', kind: 'text' },
  parameter_values: { sql: 'jobs.parameter_values', kind: 'text' },
  node: { sql: 'jobs.node', kind: 'int' },
  start_time: { sql: 'jobs.start_time', kind: 'time' },
  end_time: { sql: 'jobs.end_time', kind: 'time' },
  error_reason: { sql: 'jobs.error_reason', kind: 'text' },
  progress_amount: { sql: 'jobs.progress_amount', kind: 'real' },
  // Extension: derived in the JSON, so the reference cannot filter on it (500); we can.
  is_cancelled: { sql: JOB_IS_CANCELLED_SQL, kind: 'bool' },
  creator: { sql: 'jobs.creator', kind: 'int' },
  creation_time: { sql: 'jobs.creation_time', kind: 'time' },
  deletion_time: { sql: 'jobs.deletion_time', kind: 'time' },
};

export const OUTPUT_FIELDS: FieldTable = {
  pk: { sql: 'outputs.pk', kind: 'int' },
  id: { sql: 'outputs.pk', kind: 'int' },
  job: { sql: 'outputs.job', kind: 'int' },
  'job.pk': { sql: 'outputs.job', kind: 'int' },
  'job.template': { sql: 'j.template', kind: 'int' },
  'job.node': { sql: 'j.node', kind: 'int' },
  'job.creator': { sql: 'j.creator', kind: 'int' },
  name: { sql: 'outputs.name', kind: 'text' },
  type: { sql: 'outputs.type', kind: 'text' },
  creator: { sql: 'outputs.creator', kind: 'int' },
  creation_time: { sql: 'outputs.creation_time', kind: 'time' },
  deletion_time: { sql: 'outputs.deletion_time', kind: 'time' },
};
