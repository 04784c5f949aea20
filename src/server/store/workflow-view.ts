/**
 * `GET /v1/jobs/{pk}/workflow` (extension): a workflow's parent job with its graph, each node's job
 * (null until created) and progress — what a live view needs to draw the workflow in one request.
 * Nested workflows appear as a node whose job is itself a workflow's parent (ask for its own view).
 */
import { UfdlError } from '../../protocol/errors.js';
import type { WorkflowGraphJson, WorkflowJson } from '../../protocol/wire.js';
import type { Db } from './db.js';
import { jobJson, requireJobRow, type JobRow } from './job-json.js';
import { UnreadableGraphError } from './stored-graph.js';
import { childrenOf, dependenciesOf, nodeProgress, workflowGraph } from './workflow-state.js';

export function workflowView(db: Db, pk: number): WorkflowJson {
  const parent = requireJobRow(db, pk);
  let graph: WorkflowGraphJson | undefined;
  try {
    graph = workflowGraph(db, parent.template);
  } catch (err) {
    if (!(err instanceof UnreadableGraphError)) throw err;
    return unreadableGraphView(db, parent, err);
  }
  if (!graph) {
    const hint = parent.parent === null ? '' : `; it is a child of the workflow job ${parent.parent}`;
    throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', `Job ${pk} is not a workflow (its template is not a meta-template)${hint}`);
  }
  const children = childrenOf(db, pk);
  return {
    job: jobJson(db, parent),
    progress: parent.progress_amount,
    nodes: Object.entries(graph.nodes).map(([name, node]) => {
      const child = children.get(name);
      return {
        name,
        template: node.template,
        depends_on: dependenciesOf(graph, name),
        job: child ? jobJson(db, child) : null,
        progress: nodeProgress(child),
      };
    }),
    dependencies: graph.dependencies,
  };
}

/**
 * A run whose template's graph was stored unreadable (by hand): still the job and the jobs it made,
 * which a user needs to see what happened and to cancel it, with `graph_error` in place of the wiring.
 */
function unreadableGraphView(db: Db, parent: JobRow, err: UnreadableGraphError): WorkflowJson {
  return {
    job: jobJson(db, parent),
    progress: parent.progress_amount,
    nodes: [...childrenOf(db, parent.pk)].map(([name, child]) => ({
      name,
      template: { pk: child.template, name: child.template_name, version: child.template_version },
      depends_on: [],
      job: jobJson(db, child),
      progress: nodeProgress(child),
    })),
    dependencies: [],
    graph_error: err.message,
  };
}
