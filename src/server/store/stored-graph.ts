/**
 * Reading a workflow's stored `graph` column. Import writes it (`workflow-import.ts`), but a row from
 * an older database or written by hand may hold anything: text that is not JSON, or JSON without the
 * shape every reader takes for granted (`nodes` by name, each with its template's `{pk, name,
 * version}`; `dependencies` of five strings). Read unchecked, such a graph made every route that
 * reached it a 500 and failed the transaction of a child's end that advanced its run. Read through
 * here, it is an {@link UnreadableGraphError} naming the template and the part at fault, which each
 * caller turns into what its user needs: a 400 (create-job, export, import of a workflow that nests
 * it), a template answered without its graph (reads), a run that errors (`workflow-run.ts`).
 */
import { UfdlError } from '../../protocol/errors.js';
import type { WorkflowGraphJson } from '../../protocol/wire.js';

/** The columns of a template row that name it and hold its graph. */
export interface StoredGraphRow {
  pk: number;
  name: string;
  version: number;
  graph: string;
}

/** A stored graph that is not JSON, or not of a graph's shape: a 400 when a request meets it. */
export class UnreadableGraphError extends UfdlError {
  /** The template whose graph it is. */
  readonly pk: number;
  /** `Workflow template N ('name' vV)`, for callers that tell it in a sentence of their own. */
  readonly which: string;
  /** What is wrong, starting with the path to the part at fault (`graph.nodes.a.template.pk: …`). */
  readonly problem: string;

  constructor(row: StoredGraphRow, problem: string) {
    const which = `Workflow template ${row.pk} ('${row.name}' v${row.version})`;
    super('UFDL_ERR_TEMPLATE_BAD', `${which}: its stored graph cannot be read: ${problem}; import it again with the graph corrected`);
    this.pk = row.pk;
    this.which = which;
    this.problem = problem;
  }
}

/** The graph of a meta-template's row, its shape checked; throws {@link UnreadableGraphError}. */
export function storedGraph(row: StoredGraphRow): WorkflowGraphJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(row.graph);
  } catch (err) {
    throw new UnreadableGraphError(row, `graph: not JSON (${jsonSyntaxProblem(err)})`);
  }
  const problem = graphShapeProblem(parsed);
  if (problem !== undefined) throw new UnreadableGraphError(row, problem);
  return parsed as WorkflowGraphJson;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A key as a path shows it: a hand-written one may be of any length. */
function shown(key: string): string {
  return key.length > 120 ? `${key.slice(0, 120)}…` : key;
}

/** The first part of `graph` not of the shape import stores, as `path: what is wrong`; undefined when none. */
function graphShapeProblem(graph: unknown): string | undefined {
  if (!isObject(graph)) return 'graph: not an object with nodes and dependencies';
  if (!isObject(graph.nodes)) return 'graph.nodes: not an object of nodes by name';
  for (const [name, node] of Object.entries(graph.nodes)) {
    const where = `graph.nodes.${shown(name)}`;
    if (!isObject(node)) return `${where}: not an object`;
    const template = node.template;
    if (!isObject(template) || !Number.isSafeInteger(template.pk) || typeof template.name !== 'string' || !Number.isSafeInteger(template.version)) {
      return `${where}.template: not {pk, name, version} of a template (integers and a string)`;
    }
    const problem = overridesShapeProblem(`${where}.parameter_default_overrides`, node.parameter_default_overrides);
    if (problem !== undefined) return problem;
  }
  if (!Array.isArray(graph.dependencies)) return 'graph.dependencies: not an array';
  for (const [i, dependency] of graph.dependencies.entries()) {
    const where = `graph.dependencies[${i}]`;
    if (!isObject(dependency)) return `${where}: not an object`;
    for (const key of ['from_node', 'from_output', 'from_output_type', 'to_node', 'to_input']) {
      if (typeof dependency[key] !== 'string') return `${where}.${key}: not a string`;
    }
  }
  return undefined;
}

/** Overrides as a run applies them (`workflow-run.ts`): a default comes with its type. */
function overridesShapeProblem(where: string, overrides: unknown): string | undefined {
  if (overrides === undefined) return undefined;
  if (!isObject(overrides)) return `${where}: not an object of overrides by parameter`;
  for (const [name, override] of Object.entries(overrides)) {
    if (!isObject(override)) return `${where}.${shown(name)}: not an object`;
    if (Object.hasOwn(override, 'default') && typeof override.default_type !== 'string') return `${where}.${shown(name)}.default_type: not a string, with a default`;
    if (override.const !== undefined && typeof override.const !== 'boolean') return `${where}.${shown(name)}.const: not a boolean`;
  }
  return undefined;
}

/** The columns of a template row its declarations are read from (`template-declarations.ts`). */
export interface StoredDeclarationsRow {
  pk: number;
  name: string;
  version: number;
  parameters: string;
  inputs: string | null;
  outputs: string | null;
}

/**
 * The first of a template row's `parameters`, `inputs` and `outputs` columns not of the shape import
 * stores, as `template N ('name' vV): its stored … column cannot be read: …`; undefined when all are.
 * The graph checks (`workflow-graph-rules.ts`) read them unchecked: a row written by hand would make
 * create-job a 500, and fail the transaction of the child's end that creates a nested workflow's job.
 */
export function storedDeclarationsProblem(row: StoredDeclarationsRow): string | undefined {
  const problem = columnProblem('parameters', row.parameters, parametersShapeProblem) ?? columnProblem('inputs', row.inputs, inputsShapeProblem) ?? columnProblem('outputs', row.outputs, outputsShapeProblem);
  return problem === undefined ? undefined : `template ${row.pk} ('${row.name}' v${row.version}): its stored ${problem}`;
}

function columnProblem(column: string, text: string | null, shapeProblem: (value: unknown) => string | undefined): string | undefined {
  if (text === null) return column === 'parameters' ? `${column} column cannot be read: not JSON (null)` : undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `${column} column cannot be read: not JSON (${jsonSyntaxProblem(err)})`;
  }
  const problem = shapeProblem(value);
  return problem === undefined ? undefined : `${column} column cannot be read: ${problem}`;
}

const isStringArray = (value: unknown): boolean => Array.isArray(value) && value.every((item) => typeof item === 'string');

function parametersShapeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object of parameters by name';
  for (const [name, parameter] of Object.entries(value)) {
    if (!isObject(parameter) || !isStringArray(parameter.types)) return `parameter '${shown(name)}': not an object with types (strings)`;
  }
  return undefined;
}

function inputsShapeProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'not an array of inputs';
  for (const [i, input] of value.entries()) {
    if (!isObject(input) || typeof input.name !== 'string' || !isStringArray(input.types)) return `input [${i}]: not an object with a name and types (strings)`;
  }
  return undefined;
}

function outputsShapeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object of output types by name';
  for (const [name, type] of Object.entries(value)) if (typeof type !== 'string') return `output '${shown(name)}': its type is not a string`;
  return undefined;
}

/**
 * Where stored text stops being JSON, without the text itself: V8's message quotes the start of it
 * (`Unexpected token 'x', "…" is not valid JSON`), and the problem is shown to whoever runs a workflow
 * that nests this one, who may not see the template.
 */
function jsonSyntaxProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position !== undefined) return `at character ${position}`;
  if (/Unexpected end of JSON input/.test(message)) return 'it ends too early';
  return 'an unexpected character';
}
