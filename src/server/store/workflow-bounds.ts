/**
 * The bounds of one workflow (a meta-template): how many nodes and dependencies its graph has, how
 * long its node names are, how deep workflows nest in it, how many jobs one of its runs creates, and
 * how much its nodes' declarations weigh. Import refuses a workflow over any of them
 * (`routes/template-body.ts`, `workflow-import.ts`); create-job, and the creation of a nested
 * workflow's job, check them all again (`workflow-run-bounds.ts`), for a workflow stored without them,
 * so that a run never costs more than a new import allows. The longest name of an output copied to a
 * workflow's parent follows from the node names' length and the depth (`outputs.ts`).
 */
import type { Db } from './db.js';
import { storedGraph } from './stored-graph.js';
import { getTemplate, type TemplateRow } from './templates.js';

/** The longest node name: node names become prefixes of parameter, input and output names (`node:name`). */
export const MAX_NODE_NAME_LENGTH = 100;
/** Node names become parts of parameter, input and output names (`node:name`), hence no `:`. */
export const NODE_NAME = new RegExp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,${MAX_NODE_NAME_LENGTH - 1}}$`);
/** What import says of a node name {@link NODE_NAME} refuses. */
export const NODE_NAME_RULE = `a node name is 1-${MAX_NODE_NAME_LENGTH} letters, digits, '_', '.' or '-', starting with a letter, digit or '_' (no ':')`;
/** The nodes of one graph: each is a job of every run, created in the transaction that makes it ready. */
export const MAX_WORKFLOW_NODES = 100;
/** The dependencies of one graph: every child transition of a run reads them all. */
export const MAX_WORKFLOW_DEPENDENCIES = 1000;
/** A workflow inside a workflow inside …: deeper than this is refused. */
export const MAX_WORKFLOW_DEPTH = 4;
/**
 * The jobs one run of a workflow creates, its own parent and those of the workflows in it included:
 * nesting multiplies (100 nodes of a workflow of 100 nodes is 10,000 jobs from one create-job, in one
 * transaction), so the product is bounded, not only each factor.
 */
export const MAX_WORKFLOW_JOBS = 1000;
/**
 * What a workflow inherits from its nodes (their inputs, parameters and outputs, as stored JSON) adds
 * up over the nodes: 100 nodes of one large template (a body may be 1 MiB) would make a template of
 * 100 MiB, sent whole to every user who lists templates.
 */
export const MAX_WORKFLOW_DECLARATIONS_BYTES = 4 * 1024 ** 2;

export interface WorkflowSize {
  /** 0 for a workable template, 1 + the deepest child for a meta-template; Infinity for one that runs itself. */
  depth: number;
  /** The jobs a run creates: 1 for a workable template, 1 + its nodes' for a meta-template. */
  jobs: number;
}

/**
 * A template's {@link WorkflowSize}, each template computed once (`memo`, by pk): a graph names the
 * same template many times. A workflow that runs itself, however indirectly (no import can make one:
 * a graph names templates stored before it, but a row written by hand can), nests without end:
 * `opened`, the workflows being computed, tells it, where the recursion would otherwise never end.
 */
export function workflowSize(db: Db, row: TemplateRow, memo: Map<number, WorkflowSize>, opened = new Set<number>()): WorkflowSize {
  const known = memo.get(row.pk);
  if (known) return known;
  if (opened.has(row.pk)) return { depth: Infinity, jobs: Infinity };
  let size: WorkflowSize = { depth: 0, jobs: 1 };
  if (row.graph !== null) {
    const graph = storedGraph({ ...row, graph: row.graph });
    size = { depth: 1, jobs: 1 };
    opened.add(row.pk);
    for (const node of Object.values(graph.nodes)) {
      // The memo before the row: a template already sized need not be read again.
      const sized = memo.get(node.template.pk);
      const child = sized ? undefined : getTemplate(db, node.template.pk);
      if (!sized && !child) continue;
      const inner = sized ?? workflowSize(db, child!, memo, opened);
      size.depth = Math.max(size.depth, 1 + inner.depth);
      size.jobs += inner.jobs;
    }
    opened.delete(row.pk);
  }
  memo.set(row.pk, size);
  return size;
}

/** The jobs a run of a workflow whose nodes run `nodes` (one template a node) creates, its parent included. */
export function runJobs(db: Db, nodes: readonly TemplateRow[], memo: Map<number, WorkflowSize> = new Map()): number {
  return 1 + nodes.reduce((sum, child) => sum + workflowSize(db, child, memo).jobs, 0);
}

/** The bytes of the inputs, parameters and outputs (stored JSON) a workflow inherits from `nodes`. */
export function declarationsBytes(nodes: readonly TemplateRow[]): number {
  let bytes = 0;
  for (const child of nodes) {
    for (const json of [child.parameters, child.inputs, child.outputs]) if (json !== null) bytes += Buffer.byteLength(json);
  }
  return bytes;
}
