/**
 * Importing a meta-template (a workflow) in the reference's format (ufdl-json-messages
 * `core/jobs/meta/`): `specific` is a DependencyGraph
 *
 *   { "nodes": { "<node>": { "name": "<template>", "version"?: n, "parameter_default_overrides"?: {…} } },
 *     "dependencies": [ { "from_node", "from_output", "to_node", "to_input" } ] }
 *
 * Checked here, each a 400 naming the problem (the reference checks fewer, and crashes on some):
 * every child template exists (latest active version when none is given); overrides name parameters
 * of the child that are not const, with defaults that fit; every dependency joins two known nodes,
 * names an output its producer declares and an input its consumer has, wires no input twice, and the
 * input accepts `JobOutput<the output's type>`; the graph has no cycle (`workflow-graph-rules.ts`,
 * which create-job applies again to a stored graph); nesting stays shallow.
 *
 * The workflow inherits, as the reference's import means to, every child input that no dependency
 * feeds (`node:input`), every child parameter (`node:parameter`, defaults overridden) and every
 * child output (`node:output`, so that a workflow can itself be a node of another).
 */
import { printType } from '../../protocol/type-string.js';
import type { TemplateInput, TemplateParameter, WorkflowGraphJson, WorkflowNodeJson } from '../../protocol/wire.js';
import { cachedStatement, immediateTransaction, type Db } from './db.js';
import { declaredInputs, declaredOutputs, declaredParameters } from './template-declarations.js';
import { storedDeclarationsProblem } from './stored-graph.js';
import {
  declarationsBytes,
  MAX_WORKFLOW_DECLARATIONS_BYTES,
  MAX_WORKFLOW_DEPTH,
  MAX_WORKFLOW_JOBS,
  NODE_NAME,
  NODE_NAME_RULE,
  runJobs,
  workflowSize,
  type WorkflowSize,
} from './workflow-bounds.js';
import { bad, getTemplate, insertTemplate, type TemplateCommon, type TemplateRow } from './templates.js';
import { checkAcyclic, checkDependencies, checkOverriddenAgentTemplate, checkOverrides, withOverride, type DependencySpec } from './workflow-graph-rules.js';

/** A workflow's `specific` (a DependencyGraph), its shape checked at the route edge (`routes/template-body.ts`). */
export interface GraphSpec {
  nodes: Record<string, { name: string; version?: number | undefined; parameter_default_overrides?: Record<string, ParameterOverrideSpec> | undefined }>;
  dependencies: DependencySpec[];
}

interface ParameterOverrideSpec {
  default?: unknown;
  default_type?: string | undefined;
  const?: boolean | undefined;
}

/**
 * Validate and import a meta-template (admin); same versioning rules as a workable template. One
 * immediate transaction, reads included: the children it resolves cannot be hard-deleted (by
 * another replica) between its checks and its insert, which would leave a workflow whose every run
 * fails on the missing template.
 */
export function importWorkflowTemplate(db: Db, common: TemplateCommon, spec: GraphSpec, creator: number): TemplateRow {
  for (const name of Object.keys(spec.nodes)) {
    if (!NODE_NAME.test(name)) throw bad(`specific.nodes.${name}: ${NODE_NAME_RULE}`);
  }
  return immediateTransaction(db, () => importChecked(db, common, spec, creator));
}

function importChecked(db: Db, common: TemplateCommon, spec: GraphSpec, creator: number): TemplateRow {
  const sizes = new Map<number, WorkflowSize>();
  const children = resolveChildren(db, spec, sizes);
  const jobs = runJobs(db, [...children.values()], sizes);
  if (jobs > MAX_WORKFLOW_JOBS) {
    throw bad(
      `specific.nodes: a run of this workflow would create ${jobs} jobs (its own, its nodes' and those of the workflows they run); at most ${MAX_WORKFLOW_JOBS}`,
    );
  }
  checkDeclarationsSize(children);
  const nodes: Record<string, WorkflowNodeJson> = {};
  for (const [name, node] of Object.entries(spec.nodes)) {
    const row = children.get(name)!;
    const overrides = checkOverrides('specific', name, row, node.parameter_default_overrides);
    if (overrides) checkOverriddenAgentTemplate(db, `specific.nodes.${name}.parameter_default_overrides`, row, overrides);
    nodes[name] = { template: { pk: row.pk, name: row.name, version: row.version }, ...(overrides ? { parameter_default_overrides: overrides } : {}) };
  }
  const dependencies = checkDependencies('specific', spec.dependencies, children);
  checkAcyclic('specific', Object.keys(spec.nodes), dependencies);
  const graph: WorkflowGraphJson = { nodes, dependencies };
  const derived = deriveDeclarations(graph, children);

  return insertTemplate(db, creator, common, {
    type: '',
    executor_class: '',
    required_packages: '',
    parameters: JSON.stringify(derived.parameters),
    inputs: JSON.stringify(derived.inputs),
    outputs: JSON.stringify(derived.outputs),
    graph: JSON.stringify(graph),
  });
}

/** Each node's template: the given version, else the latest active one of that name. */
function resolveChildren(db: Db, spec: GraphSpec, sizes: Map<number, WorkflowSize>): Map<string, TemplateRow> {
  const children = new Map<string, TemplateRow>();
  for (const [name, node] of Object.entries(spec.nodes)) {
    const where = `specific.nodes.${name}`;
    const found = (
      node.version === undefined
        ? cachedStatement(db, 'SELECT pk FROM templates WHERE name = ? AND deletion_time IS NULL ORDER BY version DESC LIMIT 1').get(node.name)
        : cachedStatement(db, 'SELECT pk FROM templates WHERE name = ? AND version = ? AND deletion_time IS NULL').get(node.name, node.version)
    ) as { pk: number } | undefined;
    if (!found) {
      const which = node.version === undefined ? `no active template is named '${node.name}'` : `no active template '${node.name}' has version ${node.version}`;
      throw bad(`${where}: unknown child template: ${which}; import it first`);
    }
    const row = getTemplate(db, found.pk)!;
    // Its declarations are what the checks below read: one written by hand is refused, not a 500.
    const unreadable = storedDeclarationsProblem(row);
    if (unreadable !== undefined) throw bad(`${where}: ${unreadable}; import it again`);
    if (workflowSize(db, row, sizes).depth + 1 > MAX_WORKFLOW_DEPTH) {
      throw bad(`${where}: template '${row.name}' is a workflow nested too deep (at most ${MAX_WORKFLOW_DEPTH} levels of workflows)`);
    }
    children.set(name, row);
  }
  return children;
}

/** Refuse, before deriving them, inherited declarations over {@link MAX_WORKFLOW_DECLARATIONS_BYTES}. */
function checkDeclarationsSize(children: Map<string, TemplateRow>): void {
  const bytes = declarationsBytes([...children.values()]);
  if (bytes > MAX_WORKFLOW_DECLARATIONS_BYTES) {
    throw bad(
      `specific.nodes: the inputs, parameters and outputs this workflow inherits from its nodes take ${bytes} bytes as JSON; at most ${MAX_WORKFLOW_DECLARATIONS_BYTES}`,
    );
  }
}

/** The workflow's own inputs, parameters and outputs, from its children's, named `node:name`. */
function deriveDeclarations(
  graph: WorkflowGraphJson,
  children: Map<string, TemplateRow>,
): { inputs: TemplateInput[]; parameters: Record<string, TemplateParameter>; outputs: Record<string, string> } {
  const wired = new Set(graph.dependencies.map((d) => `${d.to_node}:${d.to_input}`));
  const inputs: TemplateInput[] = [];
  const parameters: Record<string, TemplateParameter> = {};
  const outputs: Record<string, string> = {};
  for (const [node, { parameter_default_overrides: overrides }] of Object.entries(graph.nodes)) {
    const child = children.get(node)!;
    for (const [name, input] of Object.entries(declaredInputs(child))) {
      if (!wired.has(`${node}:${name}`)) inputs.push({ name: `${node}:${name}`, types: input.types.map(printType), help: input.help });
    }
    for (const [name, parameter] of Object.entries(declaredParameters(child))) {
      const override = overrides?.[name];
      parameters[`${node}:${name}`] = override === undefined ? parameter : withOverride(parameter, override);
    }
    for (const [name, type] of Object.entries(declaredOutputs(child))) outputs[`${node}:${name}`] = type;
  }
  return { inputs, parameters, outputs };
}
