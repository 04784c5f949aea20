/**
 * Running a workflow (a job of a meta-template), as the reference's `core_app/models/jobs/_Job.py`
 * and `meta/_MetaTemplate.py` mean it to run:
 *
 * - create-job makes the parent and a child for every node that depends on nothing; each child gets
 *   the parent's values named `node:name` (prefix removed) and the workflow's parameter overrides;
 * - a child's start starts the parent (the first one); its progress makes the parent's the mean of
 *   every node's; its error errors the parent (`Error in child job '<node>':\n<error>`) and nothing
 *   new is created until it is reset or aborted (then the parent is STARTED again if no other child
 *   is in error — the reference's helper for this crashes, bug B16); its finish copies its outputs
 *   to the parent (`node:name`) and creates every node whose dependencies have all finished, its
 *   inputs the dependencies' outputs; the last finish finishes the parent;
 * - cancel of the parent cancels every unfinished child (and their children).
 *
 * Every function here runs inside the transaction of the transition that triggered it
 * (`store/jobs.ts`), so a step and its consequences commit together or not at all: a server killed
 * between a child's finish and the creation of its successors has committed neither, and the node's
 * retried finish does both once. The unique index on (parent, child_name) backs that up.
 *
 * Watchers of the parent see its own transitions, and every transition of a child while the parent
 * runs, as frames of the parent whose `transition_data` names the child: `{triggered_by: <child pk>,
 * progress: <child's progress>, child: <node>, child_transition: <transition>}`, plus `in_turn` (the
 * child's own data) when the child is itself a workflow — the reference's shape, extended.
 */
import { CANCELLED_REASON, isFinalised, type Phase } from '../../protocol/phase.js';
import type { Transition, TypedValue, WorkflowGraphJson } from '../../protocol/wire.js';
import { serverFailPoint } from '../fail-points.js';
import { insertJob } from './create-job.js';
import { cachedStatement, nowIso, type Db } from './db.js';
import type { CheckedValues } from './job-request.js';
import { requireJobRow, type JobRow } from './job-json.js';
import { jobPhase, type TransitionEvents } from './notifications.js';
import { getTemplate, requireTemplate } from './templates.js';
import { UnreadableGraphError } from './stored-graph.js';
import { MAX_WORKFLOW_DEPTH } from './workflow-bounds.js';
import { runBoundsProblem } from './workflow-run-bounds.js';
import { childrenOf, copyOutputsToParent, dependenciesOf, nodeProgress, workflowGraph, workflowProgress } from './workflow-state.js';

/** What a graph that import would have refused is told with, after its problem. */
const UNCHECKED = 'it was stored without this check being made; import it again with the graph corrected';

/** A child could not be created (a dependency's output is missing, a nested workflow is past the bounds): the parent errors with this. */
class ChildCreationError extends Error {}

/** Insert the parent of a new workflow and its first children; returns the parent's pk. */
export function startWorkflow(db: Db, templatePk: number, values: CheckedValues, description: string, creator: number, events: TransitionEvents): number {
  const pk = insertJob(db, { template: templatePk, description, inputValues: values.inputs, parameterValues: values.parameters, creator });
  const parent = requireJobRow(db, pk);
  events.created.push([pk, parent]);
  advance(db, parent, events);
  return pk;
}

/** What a transition of a workflow's child does to its parent (and, in turn, to the parent's parent). */
export function propagateToParent(db: Db, child: JobRow, transition: Transition, data: Record<string, unknown>, events: TransitionEvents): void {
  if (child.parent === null) return;
  const parent = requireJobRow(db, child.parent);
  const phase = jobPhase(parent);
  const cause = causeData(child, transition, data);
  if (transition === 'start' && phase === 'CREATED') {
    cachedStatement(db, 'UPDATE jobs SET start_time = ? WHERE pk = ?').run(nowIso(), parent.pk);
    return parentTransition(db, parent.pk, 'start', cause, events);
  }
  if (transition === 'error' && phase === 'STARTED') {
    return errorParent(db, parent.pk, `Error in child job '${child.child_name}':\n${child.error_reason ?? ''}`, cause, events);
  }
  if (transition === 'finish' && phase !== 'CANCELLED') {
    copyOutputsToParent(db, child, parent.pk);
    serverFailPoint('workflow:child-finished');
    if (phase === 'STARTED' && advance(db, parent, events, cause)) return;
  }
  if ((transition === 'reset' || transition === 'abort') && phase === 'ERRORED' && !hasErroredChild(db, parent.pk)) {
    cachedStatement(db, 'UPDATE jobs SET end_time = NULL, error_reason = NULL WHERE pk = ?').run(parent.pk);
    parentTransition(db, parent.pk, 'reset', cause, events);
    advance(db, requireJobRow(db, parent.pk), events, cause);
    return;
  }
  // Anything else changes the parent's phase in nothing; its watchers still hear of it.
  if (phase === 'STARTED' || phase === 'ERRORED') parentTransition(db, parent.pk, 'progress', cause, events);
}

/**
 * Cancel every unfinished child of a cancelled parent, and theirs: a child that had not started can
 * no longer start (bug B4), a running one is CANCELLED and its node stops it.
 */
export function cancelChildren(db: Db, parentPk: number, events: TransitionEvents): void {
  for (const child of childrenOf(db, parentPk).values()) {
    const phase = jobPhase(child);
    if (isFinalised(phase)) continue;
    markCancelled(db, child.pk, phase);
    events.add(requireJobRow(db, child.pk), 'cancel');
    if (child.template_is_meta === 1) cancelChildren(db, child.pk, events);
  }
}

/**
 * Write a cancel: `error_reason` "Cancelled" with no `end_time` (the reference's CANCELLED); a job
 * that had not started is marked so that it can never be acquired or started (bug B4).
 */
export function markCancelled(db: Db, pk: number, phase: Phase): void {
  if (phase === 'CREATED') {
    cachedStatement(db, 'UPDATE jobs SET error_reason = ?, end_time = NULL, cancelled_unstarted = 1 WHERE pk = ?').run(CANCELLED_REASON, pk);
  } else {
    cachedStatement(db, 'UPDATE jobs SET error_reason = ?, end_time = NULL WHERE pk = ?').run(CANCELLED_REASON, pk);
  }
}

/** The data of a parent frame caused by a child's transition. */
function causeData(child: JobRow, transition: Transition, data: Record<string, unknown>): Record<string, unknown> {
  const cause: Record<string, unknown> = { triggered_by: child.pk, progress: nodeProgress(child), child: child.child_name, child_transition: transition };
  if (child.template_is_meta === 1) cause.in_turn = data;
  return cause;
}

/**
 * The parent went through `transition` (already written): refresh its progress, tell its watchers,
 * and hand the transition on to its own parent.
 */
function parentTransition(db: Db, parentPk: number, transition: Transition, cause: Record<string, unknown>, events: TransitionEvents): void {
  const parent = requireJobRow(db, parentPk);
  const graph = readableGraph(db, parent);
  // Without a readable graph the number of nodes is unknown: the progress stays as it was.
  const progress = transition === 'finish' ? 1 : graph instanceof UnreadableGraphError ? parent.progress_amount : workflowProgress(graph, childrenOf(db, parentPk));
  cachedStatement(db, 'UPDATE jobs SET progress_amount = ? WHERE pk = ?').run(progress, parentPk);
  const after = requireJobRow(db, parentPk);
  events.add(after, transition, cause);
  propagateToParent(db, after, transition, cause, events);
}

function errorParent(db: Db, parentPk: number, reason: string, cause: Record<string, unknown>, events: TransitionEvents): void {
  cachedStatement(db, 'UPDATE jobs SET end_time = ?, error_reason = ? WHERE pk = ?').run(nowIso(), reason, parentPk);
  parentTransition(db, parentPk, 'error', cause, events);
}

function hasErroredChild(db: Db, parentPk: number): boolean {
  return [...childrenOf(db, parentPk).values()].some((child) => jobPhase(child) === 'ERRORED');
}

/**
 * Let a workflow run that waits for good go on or end: {@link advance} on a parent that is not ended,
 * as a child's end would. For the sweep of stalled runs (`store/stalled-workflows.ts`). Returns
 * whether it told the parent's watchers something (a finish or an error).
 */
export function resumeWorkflow(db: Db, parentPk: number, events: TransitionEvents): boolean {
  const parent = requireJobRow(db, parentPk);
  if (parent.template_is_meta !== 1 || parent.end_time !== null) return false;
  return advance(db, parent, events);
}

/**
 * Create the job of every node whose dependencies have all finished and that has none yet; finish
 * the parent once every node's job has finished. Idempotent. Returns whether it told the parent's
 * watchers something (a finish or an error), so that the caller need not.
 */
function advance(db: Db, parent: JobRow, events: TransitionEvents, cause: Record<string, unknown> = {}): boolean {
  const phase = jobPhase(parent);
  if (phase !== 'CREATED' && phase !== 'STARTED') return false;
  const graph = readableGraph(db, parent);
  if (graph instanceof UnreadableGraphError) {
    // As a run whose graph leaves nodes that can never run: it ends, in the transaction of the step
    // that read the graph, which still commits (a child's end or reset, the stalled-run sweep).
    errorParent(db, parent.pk, `Error creating child-jobs: ${graph.which} cannot run: its stored graph cannot be read: ${graph.problem}; ${UNCHECKED}`, cause, events);
    return true;
  }
  const children = childrenOf(db, parent.pk);
  for (const node of Object.keys(graph.nodes)) {
    if (children.has(node)) continue;
    const ready = dependenciesOf(graph, node).every((dependency) => {
      const producer = children.get(dependency);
      return producer !== undefined && jobPhase(producer) === 'FINISHED';
    });
    if (!ready) continue;
    try {
      createChild(db, parent, graph, node, children, events);
    } catch (err) {
      if (!(err instanceof ChildCreationError)) throw err;
      errorParent(db, parent.pk, `Error creating child-jobs: ${err.message}`, cause, events);
      return true;
    }
  }
  const created = childrenOf(db, parent.pk);
  const allFinished = Object.keys(graph.nodes).every((node) => {
    const child = created.get(node);
    return child !== undefined && jobPhase(child) === 'FINISHED';
  });
  if (!allFinished) {
    const stalled = stalledNodes(graph, created);
    if (stalled === undefined) return false;
    errorParent(db, parent.pk, `Error creating child-jobs: ${stalledReason(db, parent, graph, stalled)}`, cause, events);
    return true;
  }
  cachedStatement(db, 'UPDATE jobs SET end_time = ? WHERE pk = ?').run(nowIso(), parent.pk);
  parentTransition(db, parent.pk, 'finish', cause, events);
  return true;
}

/** The graph of a workflow job's template, or why it cannot be read (a row written by hand). */
function readableGraph(db: Db, parent: JobRow): WorkflowGraphJson | UnreadableGraphError {
  try {
    return workflowGraph(db, parent.template)!;
  } catch (err) {
    if (err instanceof UnreadableGraphError) return err;
    throw err;
  }
}

/**
 * The nodes that can never get a job, or undefined while the run can go on: when every job made so
 * far has finished and nodes still have none, nothing will ever make them ready (a run waits only on
 * jobs it made). Only a graph stored without import's rules gets here (a cycle, a dependency on a
 * node the graph lacks), in a run that create-job let through before it checked them
 * (`workflow-graph-rules.ts`): without this, the parent would wait for good.
 */
function stalledNodes(graph: WorkflowGraphJson, created: ReadonlyMap<string, JobRow>): string[] | undefined {
  if (![...created.values()].every((child) => jobPhase(child) === 'FINISHED')) return undefined;
  const stalled = Object.keys(graph.nodes).filter((node) => !created.has(node));
  return stalled.length === 0 ? undefined : stalled;
}

/** Why `stalled` never run, for the parent's error: the nodes the graph lacks that they wait on, else a cycle among them. */
function stalledReason(db: Db, parent: JobRow, graph: WorkflowGraphJson, stalled: readonly string[]): string {
  const missing = [...new Set(stalled.flatMap((node) => dependenciesOf(graph, node)).filter((node) => !Object.hasOwn(graph.nodes, node)))];
  const names = (nodes: readonly string[]) => nodes.map((n) => `'${n}'`).join(', ');
  const why = missing.length > 0 ? `on ${names(missing)}, which the graph does not have` : 'on one another, in a cycle';
  const template = requireTemplate(db, parent.template);
  return (
    `the node${stalled.length === 1 ? '' : 's'} ${names(stalled)} of workflow template ${template.pk} ('${template.name}' v${template.version}) ` +
    `can never run: ${stalled.length === 1 ? 'it waits' : 'they wait'} ${why}; ${UNCHECKED}`
  );
}

/**
 * The child job of `node`: its inputs are the parent's `node:input` values and, for each dependency,
 * the producer's output (`JobOutput<type>`, value its pk); its parameters the parent's
 * `node:parameter` values, else the workflow's default overrides (the child template's own defaults
 * apply to the rest, as for any job). A child that is itself a workflow starts its own first children.
 */
function createChild(db: Db, parent: JobRow, graph: WorkflowGraphJson, node: string, children: ReadonlyMap<string, JobRow>, events: TransitionEvents): void {
  const inputs: Record<string, TypedValue> = {};
  const parameters: Record<string, TypedValue> = {};
  const prefix = `${node}:`;
  for (const [name, typed] of Object.entries(JSON.parse(parent.input_values) as Record<string, TypedValue>)) {
    if (name.startsWith(prefix)) inputs[name.slice(prefix.length)] = typed;
  }
  for (const [name, typed] of Object.entries(JSON.parse(parent.parameter_values ?? '{}') as Record<string, TypedValue>)) {
    if (name.startsWith(prefix)) parameters[name.slice(prefix.length)] = typed;
  }
  for (const [name, override] of Object.entries(graph.nodes[node]!.parameter_default_overrides ?? {})) {
    if (!Object.hasOwn(parameters, name) && Object.hasOwn(override, 'default')) parameters[name] = { value: override.default, type: override.default_type! };
  }
  for (const dependency of graph.dependencies.filter((d) => d.to_node === node)) {
    const producer = children.get(dependency.from_node)!;
    const output = cachedStatement(db, 'SELECT pk FROM outputs WHERE job = ? AND name = ? AND type = ? AND removed = 0 AND deletion_time IS NULL ORDER BY pk DESC LIMIT 1').get(
      producer.pk,
      dependency.from_output,
      dependency.from_output_type,
    ) as { pk: number } | undefined;
    if (!output) {
      throw new ChildCreationError(`Job-dependency '${dependency.from_node}' produced no output '${dependency.from_output}' of type ${dependency.from_output_type}`);
    }
    inputs[dependency.to_input] = { value: output.pk, type: `JobOutput<${dependency.from_output_type}>` };
  }
  checkNestedBounds(db, parent, graph.nodes[node]!.template.pk);
  const template = requireTemplate(db, parent.template);
  const pk = insertJob(db, {
    template: graph.nodes[node]!.template.pk,
    // The reference's wording, from which its code reads the node's name back.
    description: `child job '${node}' of meta-job ${template.name} v${template.version}`,
    inputValues: inputs,
    parameterValues: parameters,
    creator: parent.creator,
    child: { parent: parent.pk, name: node },
  });
  const child = requireJobRow(db, pk);
  events.created.push([pk, child]);
  if (child.template_is_meta === 1) advance(db, child, events);
  else events.acquirable.push(pk);
}

/**
 * A node that runs a workflow gets its job only while the run stays within the bounds import sets,
 * its depth counted from the top-level workflow (`workflow-run-bounds.ts`). create-job checked them
 * for the whole run, but a run it let through before it checked them all may reach a workflow too
 * deep, which would nest further and copy outputs to its parents under names longer than lookups
 * accept, or one whose graph breaks import's rules (a cycle: its job would wait for good): the
 * parent errors instead, naming the bound or the rule.
 */
function checkNestedBounds(db: Db, parent: JobRow, templatePk: number): void {
  const template = getTemplate(db, templatePk);
  if (template === undefined || template.graph === null) return;
  // At create-job this repeats what was checked for the whole run: a few reads, nothing written.
  const problem = runBoundsProblem(db, template, workflowLevels(db, parent));
  if (problem !== undefined) throw new ChildCreationError(problem);
}

/** The workflows a child of `parent` runs in: the parent and those above it, counted to one past the bound (more changes nothing). */
function workflowLevels(db: Db, parent: JobRow): number {
  let levels = 1;
  for (let above = parent.parent; above !== null && levels <= MAX_WORKFLOW_DEPTH; levels++) {
    above = (cachedStatement(db, 'SELECT parent FROM jobs WHERE pk = ?').get(above) as { parent: number | null }).parent;
  }
  return levels;
}
