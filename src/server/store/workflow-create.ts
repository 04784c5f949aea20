/**
 * create-job on a meta-template: the request is checked like any job's (`job-request.ts`) against
 * the workflow's own inputs and parameters (its children's, named `node:name`), then the parent and
 * its first children are stored in one transaction. `child_notification_overrides` must name nodes
 * of the workflow (`node`, or `node:inner` for a nested workflow's), as in the reference (406); they
 * are accepted and otherwise unused, like `notification_override` (docs/COMPATIBILITY.md). A workflow
 * over the bounds import sets, or whose graph breaks its rules (stored without them), is refused
 * before anything is checked.
 */
import { UfdlError } from '../../protocol/errors.js';
import type { Db } from './db.js';
import { checkJobOutputsLive, checkJobValues, invalidJobInput, type CreateJobRequest } from './job-request.js';
import { TransitionEvents } from './notifications.js';
import { declaredInputs, declaredParameters } from './template-declarations.js';
import { storedGraph } from './stored-graph.js';
import { getTemplate, type TemplateRow } from './templates.js';
import { runBoundsProblem } from './workflow-run-bounds.js';
import { startWorkflow } from './workflow-run.js';

/** Check `request` against the meta-`template`, store the workflow; returns the parent's pk and what to announce. */
export function createWorkflowJob(db: Db, template: TemplateRow, request: CreateJobRequest, creator: number): { pk: number; events: TransitionEvents } {
  checkRunBounds(db, template);
  for (const name of Object.keys(request.child_notification_overrides ?? {})) {
    if (!isDescendant(db, template, name)) throw invalidJobInput(`Unknown descendant for job from template #${template.pk}: ${name}`);
  }
  const values = checkJobValues(declaredInputs(template), declaredParameters(template), request);
  const events = new TransitionEvents();
  const pk = db
    .transaction(() => {
      checkJobOutputsLive(db, values);
      return startWorkflow(db, template.pk, values, request.description ?? '', creator, events);
    })
    .immediate();
  return { pk, events };
}

/** Whether `name` (`node` or `node:inner:…`) names a node of the workflow or of a nested one. */
function isDescendant(db: Db, template: TemplateRow | undefined, name: string): boolean {
  if (!template || template.graph === null) return false;
  const [head, ...rest] = name.split(':');
  const { nodes } = storedGraph({ ...template, graph: template.graph });
  if (!Object.hasOwn(nodes, head!)) return false;
  const node = nodes[head!]!;
  return rest.length === 0 || isDescendant(db, getTemplate(db, node.template.pk), rest.join(':'));
}

/**
 * The bounds import sets, checked again for a workflow stored without them (`workflow-run-bounds.ts`):
 * without them, one create-job could insert 10,000 jobs in one transaction that holds the write lock
 * meanwhile, or nest workflows without end; and the rules of each graph (`workflow-graph-rules.ts`),
 * without which a cycle would leave the run waiting for good. A few reads of templates by pk, nothing
 * beside the run it guards.
 */
function checkRunBounds(db: Db, template: TemplateRow): void {
  const problem = runBoundsProblem(db, template);
  if (problem !== undefined) throw new UfdlError('UFDL_ERR_TEMPLATE_BAD', problem);
}
