/**
 * Whether a stored workflow may run within the bounds import sets (`workflow-bounds.ts`): its nesting,
 * the jobs a run creates, and, for it and every workflow nested in it, the nodes and dependencies of
 * the graph, the node names and the inherited declarations. Import checks each workflow as it comes,
 * but a workflow stored without those checks (an older database, a row written by hand) would
 * otherwise run past them: nest without end, insert thousands of jobs in one transaction, copy
 * outputs to its parents under names longer than lookups accept. The rules of each graph beyond its
 * bounds (`workflow-graph-rules.ts`: overrides, wiring, no cycle, the stored output types and the
 * workflow's own inputs agreeing with the graph) are checked on the same rows, as they are read: a
 * cycle, or a dependency on a node the graph lacks, would leave the run waiting for good. A graph
 * stored unreadable (`stored-graph.ts`), its own or a nested workflow's, is told the same way.
 *
 * create-job asks before anything is stored (`workflow-create.ts`, a 400); a running workflow asks
 * again before it creates a nested workflow's job (`workflow-run.ts`, the parent errors), for a run
 * that create-job let through before it asked. Templates are immutable, so a workflow that passed
 * at create-job passes there too. Each distinct template is read once or twice, whatever the graph.
 */
import type { Db } from './db.js';
import { storedGraph, UnreadableGraphError } from './stored-graph.js';
import { getTemplate, type TemplateRow } from './templates.js';
import { storedGraphProblem } from './workflow-graph-rules.js';
import {
  declarationsBytes,
  MAX_WORKFLOW_DECLARATIONS_BYTES,
  MAX_WORKFLOW_DEPENDENCIES,
  MAX_WORKFLOW_DEPTH,
  MAX_WORKFLOW_JOBS,
  MAX_WORKFLOW_NODES,
  NODE_NAME,
  NODE_NAME_RULE,
  workflowSize,
} from './workflow-bounds.js';

const AGAIN = 'it was stored without this limit being checked; import it again, as smaller workflows';
const UNCHECKED = 'it was stored without this check being made; import it again with the graph corrected';

/**
 * Why the workflow `template` cannot run, as a sentence for its user, or undefined when it can.
 * `outerLevels`: the workflows its job would run in (0 for create-job), which count towards the depth.
 */
export function runBoundsProblem(db: Db, template: TemplateRow, outerLevels = 0): string | undefined {
  const which = `Workflow template ${template.pk} ('${template.name}' v${template.version}) cannot run`;
  try {
    return boundsProblem(db, template, outerLevels, which);
  } catch (err) {
    // A graph stored unreadable, its own or a nested workflow's: told like the other stored problems.
    if (!(err instanceof UnreadableGraphError)) throw err;
    const whose = err.pk === template.pk ? '' : `nested ${err.which.replace(/^W/, 'w')}: `;
    return `${which}: ${whose}its stored graph cannot be read: ${err.problem}; ${UNCHECKED}`;
  }
}

function boundsProblem(db: Db, template: TemplateRow, outerLevels: number, which: string): string | undefined {
  // The depth first: until it is known to be bounded, walking the graphs might not end.
  const size = workflowSize(db, template, new Map());
  const levels = outerLevels + size.depth;
  if (levels > MAX_WORKFLOW_DEPTH) {
    const how =
      size.depth === Infinity
        ? 'a workflow in it runs itself, so workflows would nest without end'
        : outerLevels === 0
          ? `it nests workflows ${levels} levels deep`
          : `it would nest workflows ${levels} levels deep, counting the ${outerLevels} workflow${outerLevels === 1 ? '' : 's'} it runs in`;
    return `${which}: ${how}; at most ${MAX_WORKFLOW_DEPTH} levels of workflows; ${AGAIN}`;
  }
  if (size.jobs > MAX_WORKFLOW_JOBS) {
    return `${which}: a run would create ${size.jobs} jobs (its own, its nodes' and those of the workflows they run); at most ${MAX_WORKFLOW_JOBS}; ${AGAIN}`;
  }
  const problem = graphProblem(db, template, template, new Map());
  return problem === undefined ? undefined : `${which}: ${problem}`;
}

/**
 * The first bound that the graph of `row` (`root` or a workflow nested in it) exceeds, or rule it
 * breaks, then those nested in it. `rows`: the templates read so far (undefined: hard-deleted), each read once.
 */
function graphProblem(db: Db, root: TemplateRow, row: TemplateRow, rows: Map<number, TemplateRow | undefined>): string | undefined {
  rows.set(row.pk, row);
  const nested = row === root ? undefined : `nested workflow template ${row.pk} ('${row.name}' v${row.version})`;
  const graphOf = nested === undefined ? 'its graph' : `the graph of ${nested}`;
  const graph = storedGraph({ ...row, graph: row.graph! });
  const names = Object.keys(graph.nodes);
  if (names.length === 0) return `${graphOf} has no node; a workflow needs at least one; ${AGAIN}`;
  if (names.length > MAX_WORKFLOW_NODES) return `${graphOf} has ${names.length} nodes; at most ${MAX_WORKFLOW_NODES}; ${AGAIN}`;
  if (graph.dependencies.length > MAX_WORKFLOW_DEPENDENCIES) {
    return `${graphOf} has ${graph.dependencies.length} dependencies; at most ${MAX_WORKFLOW_DEPENDENCIES}; ${AGAIN}`;
  }
  const badName = names.find((name) => !NODE_NAME.test(name));
  if (badName !== undefined) {
    const shown = badName.length > 120 ? `${badName.slice(0, 120)}…` : badName;
    return `node '${shown}' of ${graphOf}: ${NODE_NAME_RULE}; it was stored without this limit being checked; import it again with other node names`;
  }
  const read = (pk: number) => (rows.has(pk) ? rows.get(pk) : rows.set(pk, getTemplate(db, pk)).get(pk));
  // A workflow is checked by the graph that reads it first: those this graph reads, after its own bounds.
  const unread = new Set(Object.values(graph.nodes).map((node) => node.template.pk).filter((pk) => !rows.has(pk)));
  const nodes = new Map(Object.entries(graph.nodes).map(([name, node]) => [name, read(node.template.pk)]));
  const bytes = declarationsBytes([...nodes.values()].flatMap((child) => child ?? []));
  if (bytes > MAX_WORKFLOW_DECLARATIONS_BYTES) {
    return `the inputs, parameters and outputs ${nested ?? 'it'} inherits from its nodes take ${bytes} bytes as JSON; at most ${MAX_WORKFLOW_DECLARATIONS_BYTES}; ${AGAIN}`;
  }
  // The rules import checks beyond the bounds, on the rows just read: no read of its own.
  const broken = storedGraphProblem(db, row, graph, nodes);
  if (broken !== undefined) return `${nested === undefined ? '' : `${nested}: `}${broken}; ${UNCHECKED}`;
  for (const pk of unread) {
    const child = rows.get(pk);
    if (child === undefined || child.graph === null) continue;
    const problem = graphProblem(db, root, child, rows);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
