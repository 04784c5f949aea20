/**
 * Reading a workflow's state: the graph of its parent's meta-template, the children created so far
 * (one per node at most), and the progress of each node and of the whole. Shared by the progression
 * (`workflow-run.ts`) and the `GET /v1/jobs/{pk}/workflow` view (`workflow-view.ts`).
 */
import type { WorkflowGraphJson } from '../../protocol/wire.js';
import { cachedStatement, nowIso, type Db } from './db.js';
import { JOB_SELECT, type JobRow, type OutputRow } from './job-json.js';
import { jobPhase } from './notifications.js';
import { storedGraph, type StoredGraphRow } from './stored-graph.js';

/**
 * The dependency graph of a meta-template, by pk; undefined when the template is workable. Throws
 * {@link UnreadableGraphError} for a graph stored unreadable, which each caller answers its own way.
 */
export function workflowGraph(db: Db, templatePk: number): WorkflowGraphJson | undefined {
  const row = cachedStatement(db, 'SELECT pk, name, version, graph FROM templates WHERE pk = ?').get(templatePk) as
    | (Omit<StoredGraphRow, 'graph'> & { graph: string | null })
    | undefined;
  return row?.graph == null ? undefined : storedGraph({ ...row, graph: row.graph });
}

/** The parent's children by node name (a child hard-deleted after its workflow ended is simply absent). */
export function childrenOf(db: Db, parentPk: number): Map<string, JobRow> {
  const rows = cachedStatement(db, `${JOB_SELECT} WHERE jobs.parent = ? ORDER BY jobs.pk`).all(parentPk) as JobRow[];
  return new Map(rows.filter((row) => row.child_name !== null).map((row) => [row.child_name!, row]));
}

/** The nodes a node takes outputs from. */
export function dependenciesOf(graph: WorkflowGraphJson, node: string): string[] {
  return [...new Set(graph.dependencies.filter((d) => d.to_node === node).map((d) => d.from_node))];
}

/**
 * How far a node got: 0 before its job exists, the job's last progress while it runs, 1 once it
 * finished (the reference keeps the last reported value, so a finished workflow could show 90 %).
 */
export function nodeProgress(child: JobRow | undefined): number {
  if (!child) return 0;
  return jobPhase(child) === 'FINISHED' ? 1 : child.progress_amount;
}

/** The mean over every node of the graph, created or not (as the reference computes it). */
export function workflowProgress(graph: WorkflowGraphJson, children: ReadonlyMap<string, JobRow>): number {
  const nodes = Object.keys(graph.nodes);
  return nodes.reduce((sum, node) => sum + nodeProgress(children.get(node)), 0) / nodes.length;
}

/**
 * A finished child's outputs become the parent's too, named `node:name` (the reference's
 * `_finish_meta`): same bytes, no copy on disk. Already copied ones are skipped, so this may run again.
 */
export function copyOutputsToParent(db: Db, child: JobRow, parentPk: number): void {
  const outputs = cachedStatement(db, 'SELECT * FROM outputs WHERE job = ? AND removed = 0 AND deletion_time IS NULL ORDER BY pk').all(child.pk) as OutputRow[];
  for (const output of outputs) {
    const name = `${child.child_name}:${output.name}`;
    const exists = cachedStatement(db, 'SELECT 1 FROM outputs WHERE job = ? AND name = ? AND type = ? AND removed = 0 AND deletion_time IS NULL').get(parentPk, name, output.type);
    if (exists) continue;
    cachedStatement(db, 'INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      parentPk,
      name,
      output.type,
      output.sha256,
      output.size,
      output.creator,
      nowIso(),
    );
  }
}
