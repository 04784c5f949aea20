/**
 * Creating a job from a workable template (`POST /v1/job-templates/{pk}/create-job`):
 * the request checked as `job-request.ts` says, then stored in one transaction, so a rejected
 * request stores nothing. Meta-templates start a workflow instead (`workflow-run.ts`).
 */
import type { JobJson, TypedValue } from '../../protocol/wire.js';
import { cachedStatement, immediateTransaction, nowIso, type Db } from './db.js';
import { jobJson, requireJobRow, type JobRow } from './job-json.js';
import { checkJobOutputsLive, checkJobValues, invalidJobInput, type CreateJobRequest } from './job-request.js';
import { declaredInputs, declaredParameters } from './template-declarations.js';
import type { TemplateRow } from './templates.js';

/**
 * Check `request` against the workable `template` and insert the job; returns its JSON and its row as
 * committed. A new job has no outputs and no node has said why it passes it by: pks are never reused
 * (AUTOINCREMENT, sequences), so the JSON is built without asking for either.
 */
export function createJobFromTemplate(db: Db, template: TemplateRow, request: CreateJobRequest, creator: number): { json: JobJson; row: JobRow } {
  if (request.child_notification_overrides !== undefined) {
    throw invalidJobInput('Attempted an add child notification overrides to a non-meta-job');
  }
  const values = checkJobValues(declaredInputs(template), declaredParameters(template), request);
  return immediateTransaction(db, () => {
    checkJobOutputsLive(db, values);
    const pk = insertJob(db, {
      template: template.pk,
      description: request.description ?? '',
      inputValues: values.inputs,
      parameterValues: values.parameters,
      creator,
    });
    const row = requireJobRow(db, pk);
    return { json: jobJson(db, row, [], []), row };
  });
}

export interface NewJob {
  template: number;
  description: string;
  inputValues: Record<string, TypedValue>;
  parameterValues: Record<string, TypedValue>;
  creator: number | null;
  /** A workflow's child: its parent and the node of the parent's graph it runs. */
  child?: { parent: number; name: string };
}

/** Insert a job row (CREATED); returns its pk. The caller holds the transaction. */
export function insertJob(db: Db, job: NewJob): number {
  const result = cachedStatement(db,
    `INSERT INTO jobs (template, parent, child_name, description, input_values, parameter_values, creator, creation_time)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    job.template,
    job.child?.parent ?? null,
    job.child?.name ?? null,
    job.description,
    JSON.stringify(job.inputValues),
    JSON.stringify(job.parameterValues),
    job.creator,
    nowIso(),
  );
  return Number(result.lastInsertRowid);
}
