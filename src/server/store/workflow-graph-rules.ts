/**
 * The rules of a workflow's graph beyond its bounds: each node's parameter overrides name parameters
 * its template has, not const, with defaults that fit (and leave a `ufdl_agent.*` template a script
 * and outputs its own import accepts); each dependency joins two known nodes, names
 * an output its producer declares and an input its consumer has, wires no input twice, and the input
 * accepts the output; the graph has no cycle. Import checks them as a graph comes
 * (`workflow-import.ts`, `specific.…`); create-job, and the creation of a nested workflow's job, check
 * a stored graph again (`workflow-run-bounds.ts`, `graph.…`), for one stored without them (an older
 * database, a row written by hand): a cycle, or a dependency on a node that does not exist, leaves
 * nodes that never become ready, and the run would wait for good.
 *
 * Each check throws the import's 400 (`bad`), its detail starting with `where`: the path to the part
 * at fault, under `root`.
 */
import { UfdlError } from '../../protocol/errors.js';
import { isSubtype, parseTypeString, printType, TypeStringError } from '../../protocol/type-string.js';
import type { ParameterOverride, TemplateParameter, WorkflowDependencyJson, WorkflowGraphJson } from '../../protocol/wire.js';
import { checkAgentTemplate } from './agent-templates.js';
import type { Db } from './db.js';
import { storedDeclarationsProblem, storedGraph } from './stored-graph.js';
import { declaredInputs, declaredOutputs, declaredParameters } from './template-declarations.js';
import { bad, getTemplate, resolveDefault, templateParameters, type TemplateRow } from './templates.js';

/** A dependency as import takes it (the stored ones also carry `from_output_type`, derived from the producer). */
export interface DependencySpec {
  from_node: string;
  from_output: string;
  to_node: string;
  to_input: string;
}

/**
 * A node's overrides: each names a parameter of the child that is not const (a child's const
 * parameter is its author's decision, e.g. the script it runs), with a default that fits the
 * parameter's types. Returned normalised (`default_type` resolved), or undefined when there are none.
 */
export function checkOverrides(
  root: string,
  node: string,
  child: TemplateRow,
  overrides: Record<string, ParameterOverride> | undefined,
): Record<string, ParameterOverride> | undefined {
  if (overrides === undefined || Object.keys(overrides).length === 0) return undefined;
  const parameters = declaredParameters(child);
  const out: Record<string, ParameterOverride> = {};
  for (const [name, override] of Object.entries(overrides)) {
    const where = `${root}.nodes.${node}.parameter_default_overrides.${name}`;
    const parameter = Object.hasOwn(parameters, name) ? parameters[name] : undefined;
    if (!parameter) {
      throw bad(`${where}: template '${child.name}' has no parameter '${name}' (parameters: ${Object.keys(parameters).join(', ') || 'none'})`);
    }
    if (parameter.const) throw bad(`${where}: parameter '${name}' of template '${child.name}' is const; a workflow cannot override it`);
    const resolved = resolveDefault(where, parameter.types.map((t) => parseTypeString(t)), override);
    out[name] = { ...(resolved ?? {}), ...(override.const === undefined ? {} : { const: override.const }) };
  }
  return out;
}

/** Each dependency checked against the nodes' templates (`children`, by node name); returned with its output's type. */
export function checkDependencies(root: string, dependencies: readonly DependencySpec[], children: ReadonlyMap<string, TemplateRow>): WorkflowDependencyJson[] {
  const wired = new Set<string>();
  return dependencies.map((dependency, i) => {
    const where = `${root}.dependencies[${i}]`;
    const { from_node, from_output, to_node, to_input } = dependency;
    const producer = children.get(from_node);
    const consumer = children.get(to_node);
    if (!producer) throw bad(`${where}.from_node: unknown node '${from_node}' (nodes: ${[...children.keys()].join(', ')})`);
    if (!consumer) throw bad(`${where}.to_node: unknown node '${to_node}' (nodes: ${[...children.keys()].join(', ')})`);
    if (from_node === to_node) throw bad(`${where}: node '${from_node}' depends on itself`);
    const outputs = declaredOutputs(producer);
    const outputType = Object.hasOwn(outputs, from_output) ? outputs[from_output] : undefined;
    if (outputType === undefined) {
      throw bad(`${where}.from_output: template '${producer.name}' (node '${from_node}') declares no output '${from_output}' (outputs: ${Object.keys(outputs).join(', ') || 'none'})`);
    }
    const inputs = declaredInputs(consumer);
    const input = Object.hasOwn(inputs, to_input) ? inputs[to_input] : undefined;
    if (!input) {
      throw bad(`${where}.to_input: template '${consumer.name}' (node '${to_node}') has no input '${to_input}' (inputs: ${Object.keys(inputs).join(', ') || 'none'})`);
    }
    if (wired.has(`${to_node}\n${to_input}`)) throw bad(`${where}.to_input: input '${to_input}' of node '${to_node}' is fed by more than one dependency`);
    wired.add(`${to_node}\n${to_input}`);
    const carried = parseTypeString(`JobOutput<${outputType}>`);
    if (!input.types.some((allowed) => isSubtype(carried, allowed))) {
      throw bad(
        `${where}: output '${from_output}' of node '${from_node}' (${outputType}) cannot feed input '${to_input}' of node '${to_node}', ` +
          `which accepts ${input.types.map(printType).join(' | ')}, not ${printType(carried)}`,
      );
    }
    return { from_node, from_output, from_output_type: outputType, to_node, to_input };
  });
}

/** Kahn's algorithm; what is left over lies on or behind a cycle, which the error names. `dependencies`: checked ones. */
export function checkAcyclic(root: string, nodes: readonly string[], dependencies: readonly DependencySpec[]): void {
  const waitingOn = new Map(nodes.map((n) => [n, new Set<string>()]));
  for (const d of dependencies) waitingOn.get(d.to_node)!.add(d.from_node);
  const done = new Set<string>();
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (const [node, deps] of waitingOn) {
      if (!done.has(node) && [...deps].every((d) => done.has(d))) {
        done.add(node);
        progressed = true;
      }
    }
  }
  if (done.size < nodes.length) {
    const stuck = nodes.filter((n) => !done.has(n));
    throw bad(`${root}.dependencies: the graph has a cycle through the nodes ${stuck.map((n) => `'${n}'`).join(', ')}`);
  }
}

/**
 * What a workable template's import checks of its `ufdl_agent.*` parameters (`agent-templates.ts`:
 * the script's `${name}` placements, the declared output names), checked again with a node's
 * overrides in place: an override of a non-const `body` or `outputs` default is a new script or new
 * outputs, and every agent would refuse (or fail) the node's jobs. A nested workflow's overrides
 * (`inner:name`) reach the template of its node `inner`, over that workflow's own overrides.
 */
export function checkOverriddenAgentTemplate(db: Db, where: string, child: TemplateRow, overrides: Record<string, ParameterOverride>): void {
  if (child.graph === null) {
    const parameters = templateParameters(child);
    for (const [name, override] of Object.entries(overrides)) parameters[name] = withOverride(parameters[name]!, override);
    try {
      checkAgentTemplate(child.executor_class, parameters, Object.keys(declaredInputs(child)));
    } catch (err) {
      if (!(err instanceof UfdlError)) throw err;
      throw new UfdlError(err.code, err.message.replace(/^(\w+ job template: )/, `$1${where} (template '${child.name}'): `), { cause: err });
    }
    return;
  }
  const graph = storedGraph({ ...child, graph: child.graph });
  for (const [node, { template, parameter_default_overrides: own }] of Object.entries(graph.nodes)) {
    const prefix = `${node}:`;
    const outer = Object.entries(overrides).filter(([name]) => name.startsWith(prefix));
    if (outer.length === 0) continue;
    const merged: Record<string, ParameterOverride> = { ...own };
    for (const [name, override] of outer) {
      const inner = name.slice(prefix.length);
      // The outer workflow's value wins (it is the inner workflow's parameter value when it runs).
      merged[inner] = Object.hasOwn(override, 'default') ? override : { ...merged[inner], ...override };
    }
    const row = getTemplate(db, template.pk);
    if (!row) continue;
    // A nested workflow's node template, read here first: its declarations as the checks read them.
    const unreadable = storedDeclarationsProblem(row);
    if (unreadable !== undefined) throw bad(`${where}: ${unreadable}`);
    checkOverriddenAgentTemplate(db, where, row, merged);
  }
}

/** A child parameter as the workflow offers it: the override's default, and const if it says so. */
export function withOverride(parameter: TemplateParameter, override: ParameterOverride): TemplateParameter {
  const out: TemplateParameter = { ...parameter };
  if (Object.hasOwn(override, 'default')) {
    out.default = override.default;
    out.default_type = override.default_type!;
    out.const = override.const ?? false;
  } else if (override.const !== undefined) {
    out.const = override.const;
  }
  return out;
}

/** What `bad` puts before a detail; a stored graph's problem is told without it, inside a sentence of its own. */
const BAD_PREFIX = bad('').message;

/**
 * The first rule the stored graph of `workflow` breaks, as import would say it under `graph.` (e.g.
 * `graph.dependencies[0].from_node: unknown node 'x' (nodes: a, b)`), or that its stored form breaks
 * (a stale `from_output_type`; the workflow's own `inputs` disagreeing with the graph), or undefined
 * when it keeps them all. `children`: each node's template by node name, as the caller already read
 * them (undefined: not stored). Reads only what an override of a nested workflow's node reaches.
 */
export function storedGraphProblem(
  db: Db,
  workflow: TemplateRow,
  graph: WorkflowGraphJson,
  children: ReadonlyMap<string, TemplateRow | undefined>,
): string | undefined {
  const rows = new Map<string, TemplateRow>();
  for (const [name, row] of children) {
    if (row === undefined) {
      const { pk, name: template, version } = graph.nodes[name]!.template;
      return `graph.nodes.${name}: unknown child template: template ${pk} ('${template}' v${version}) is not stored`;
    }
    rows.set(name, row);
  }
  // The columns the checks read, of the workflow and of its nodes' templates: a row written by hand
  // may hold anything there, and a throw would fail the transaction of the job whose end runs this.
  for (const row of [workflow, ...rows.values()]) {
    const unreadable = storedDeclarationsProblem(row);
    if (unreadable !== undefined) return unreadable;
  }
  try {
    for (const [name, node] of Object.entries(graph.nodes)) {
      const child = rows.get(name)!;
      const overrides = checkOverrides('graph', name, child, node.parameter_default_overrides);
      // A `body` or `outputs` default is a new script or new outputs: checked as import checks them.
      if (overrides) checkOverriddenAgentTemplate(db, `graph.nodes.${name}.parameter_default_overrides`, child, overrides);
    }
    checkStoredOutputTypes(graph.dependencies, checkDependencies('graph', graph.dependencies, rows), rows);
    checkAcyclic('graph', Object.keys(graph.nodes), graph.dependencies);
    checkDeclaredInputs(workflow, graph, rows);
    checkDeclaredParameters(workflow, graph, rows);
    return undefined;
  } catch (err) {
    // A type stored unreadable (by hand, or before type strings refused it): a problem of the stored
    // rows like the others. Thrown, it would fail the transaction of the job whose end runs this.
    if (err instanceof TypeStringError) return `graph: a type stored with it or with a template it runs cannot be read: ${err.message}`;
    if (!(err instanceof UfdlError)) throw err;
    if (err.message.startsWith(BAD_PREFIX)) return err.message.slice(BAD_PREFIX.length);
    // `Unsafe job template: …` of an overridden script: told as it is, inside the caller's sentence.
    if (/^\w+ job template: /.test(err.message)) return `${err.message[0]!.toLowerCase()}${err.message.slice(1)}`;
    // A node template's `type` column that names no job type (contractOf): a stored problem too.
    if (err.code === 'UFDL_ERR_TEMPLATE_BAD' && /^Template \d+ has an unusable type /.test(err.message)) return `t${err.message.slice(1)}`;
    throw err;
  }
}

/**
 * The workflow's own parameters (its `parameters` column) against those import derives from the
 * graph: each node's parameters, named `node:name`, its override in place. create-job checks a
 * request against the stored ones and a run hands each value to its node unchecked, so a hand edit
 * that made them disagree would let a run set a parameter the node holds const (its script), give it
 * a value of a type it does not take, or one it does not have, or leave a parameter it needs unset.
 */
function checkDeclaredParameters(workflow: TemplateRow, graph: WorkflowGraphJson, children: ReadonlyMap<string, TemplateRow>): void {
  const declared = declaredParameters(workflow);
  // Each node's parameters, read once.
  const nodeParameters = new Map([...children].map(([node, child]) => [node, declaredParameters(child)]));
  for (const [node, child] of children) {
    const overrides = graph.nodes[node]!.parameter_default_overrides ?? {};
    for (const [name, parameter] of Object.entries(nodeParameters.get(node)!)) {
      const own = `${node}:${name}`;
      const derived = Object.hasOwn(overrides, name) ? withOverride(parameter, overrides[name]!) : parameter;
      const taken = Object.hasOwn(declared, own) ? declared[own] : undefined;
      if (!taken) throw bad(`parameters: parameter '${name}' of node '${node}' (template '${child.name}') is missing; the workflow declares no parameter '${own}'`);
      if (derived.const && !taken.const) {
        throw bad(`parameters.${own}: the workflow lets a run set it, but parameter '${name}' of node '${node}' (template '${child.name}') is const`);
      }
      const allowed = parameter.types.map((t) => parseTypeString(t));
      const refused = taken.types.map((t) => parseTypeString(t)).find((type) => !allowed.some((a) => isSubtype(type, a)));
      if (refused !== undefined) {
        throw bad(
          `parameters.${own}: the workflow takes ${printType(refused)}, which parameter '${name}' of node '${node}' (template '${child.name}') ` +
            `does not accept (it accepts ${allowed.map(printType).join(' | ')})`,
        );
      }
    }
  }
  for (const own of Object.keys(declared)) {
    const colon = own.indexOf(':');
    const parameters = colon < 0 ? undefined : nodeParameters.get(own.slice(0, colon));
    if (parameters === undefined || !Object.hasOwn(parameters, own.slice(colon + 1))) {
      throw bad(`parameters.${own}: the workflow declares a parameter that no node of its graph has`);
    }
  }
}

/**
 * Each dependency's stored `from_output_type` (`stored`) against the type its producer declares now
 * (`checked`, derived as import derives it, the consumer checked against it): a run looks the output
 * up by the stored type and hands it on as `JobOutput<stored type>`, so a stale one (the producer's
 * row edited after import) would feed the consumer a type its check never saw, or find no output.
 */
function checkStoredOutputTypes(stored: readonly WorkflowDependencyJson[], checked: readonly WorkflowDependencyJson[], children: ReadonlyMap<string, TemplateRow>): void {
  stored.forEach((dependency, i) => {
    const declared = checked[i]!.from_output_type;
    if (printType(parseTypeString(dependency.from_output_type)) === printType(parseTypeString(declared))) return;
    const { from_node, from_output } = dependency;
    throw bad(
      `graph.dependencies[${i}].from_output_type: '${dependency.from_output_type}' is stored, ` +
        `but template '${children.get(from_node)!.name}' (node '${from_node}') declares output '${from_output}' as ${declared}`,
    );
  });
}

/**
 * The workflow's own inputs (its `inputs` column) against those import derives from the graph: each
 * input of a node that no dependency feeds, named `node:input`, of types that input accepts.
 * create-job checks a request against the stored ones and a run hands each to its node, so a hand
 * edit that made them disagree would create a node's job without an input it needs, or with a value
 * of a type it does not take.
 */
function checkDeclaredInputs(workflow: TemplateRow, graph: WorkflowGraphJson, children: ReadonlyMap<string, TemplateRow>): void {
  const fedBy = new Map(graph.dependencies.map((d) => [`${d.to_node}:${d.to_input}`, d.from_node]));
  const declared = declaredInputs(workflow);
  for (const [node, child] of children) {
    for (const [name, input] of Object.entries(declaredInputs(child))) {
      const own = `${node}:${name}`;
      if (fedBy.has(own)) continue;
      const taken = Object.hasOwn(declared, own) ? declared[own] : undefined;
      if (!taken) throw bad(`inputs: input '${name}' of node '${node}' (template '${child.name}') is fed by no dependency, and the workflow declares no input '${own}' to take it`);
      const refused = taken.types.find((type) => !input.types.some((allowed) => isSubtype(type, allowed)));
      if (refused !== undefined) {
        throw bad(
          `inputs.${own}: the workflow takes ${printType(refused)}, which input '${name}' of node '${node}' (template '${child.name}') ` +
            `does not accept (it accepts ${input.types.map(printType).join(' | ')})`,
        );
      }
    }
  }
  for (const own of Object.keys(declared)) {
    const colon = own.indexOf(':');
    const node = colon < 0 ? own : own.slice(0, colon);
    const from = fedBy.get(own);
    if (from !== undefined) throw bad(`inputs.${own}: the workflow declares an input that node '${from}' feeds (a dependency of the graph)`);
    const child = children.get(node);
    if (child === undefined || colon < 0 || !Object.hasOwn(declaredInputs(child), own.slice(colon + 1))) {
      throw bad(`inputs.${own}: the workflow declares an input that no node of its graph has`);
    }
  }
}
