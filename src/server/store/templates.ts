/**
 * Job templates in the database: the template JSON, the contract bound from a
 * template's type, and import in the reference's format (the migration JSON files of ufdl-backend),
 * extended for `Run` templates with `specific.inputs` (a list of `{name, types, help?}`) and
 * `specific.outputs` (a map of output name to type).
 *
 * Import checks everything a later step would trip over, so that a template that imports can always
 * be shown and used: every type string parses and names known types, defaults fit their type, the
 * contract's type arguments have the right kinds. Meta-templates (workflows) share the table, the
 * JSON's common keys and `insertTemplate`; their import is `workflow-import.ts`.
 */
import { notFound } from '../../protocol/error-constructors.js';
import { UfdlError } from '../../protocol/errors.js';
import { outputNameProblem } from '../../protocol/output-names.js';
import { checkSimpleValue, isSubtype, parseTypeString, printType, TypeStringError, type TypeNode } from '../../protocol/type-string.js';
import type { MetaTemplateJson, TemplateBaseJson, TemplateInput, TemplateJson, TemplateParameter, WorkflowGraphJson } from '../../protocol/wire.js';
import { BoundContract, type Declarations } from '../../protocol/contracts.js';
import { checkAgentTemplate } from './agent-templates.js';
import { parseJobType, unknownName } from '../job-types.js';
import { cachedStatement, nowIso, type Db } from './db.js';
import { cachedRows } from './row-reader.js';
import type { FieldTable } from './filter-sql.js';
import { requireLicencePk } from './licences.js';
import { storedGraph, UnreadableGraphError, type StoredGraphRow } from './stored-graph.js';

export interface TemplateRow {
  pk: number;
  name: string;
  version: number;
  description: string;
  scope: string;
  domain: string | null;
  /** The licence's name as imported (kept for templates imported before licences had pks). */
  licence: string | null;
  licence_pk: number | null;
  type: string;
  executor_class: string;
  required_packages: string;
  /** JSON: `Record<string, TemplateParameter>`, normalised at import. */
  parameters: string;
  /** JSON: `TemplateInput[]` for `Run` templates, else null. */
  inputs: string | null;
  /** JSON: `Record<string, string>` (output name → type) for `Run` templates that declare outputs. */
  outputs: string | null;
  /** JSON: the resolved dependency graph of a meta-template (`WorkflowGraphJson`); null when workable. */
  graph: string | null;
  creator: number | null;
  creation_time: string;
  deletion_time: string | null;
}

export const TEMPLATE_FIELDS: FieldTable = {
  pk: { sql: 'templates.pk', kind: 'int' },
  name: { sql: 'templates.name', kind: 'text' },
  version: { sql: 'templates.version', kind: 'int' },
  description: { sql: 'templates.description', kind: 'text' },
  scope: { sql: 'templates.scope', kind: 'text' },
  domain: { sql: 'templates.domain', kind: 'text' },
  licence: { sql: 'templates.licence_pk', kind: 'int' },
  type: { sql: 'templates.type', kind: 'text' },
  executor_class: { sql: 'templates.executor_class', kind: 'text' },
  required_packages: { sql: 'templates.required_packages', kind: 'text' },
  creator: { sql: 'templates.creator', kind: 'int' },
  creation_time: { sql: 'templates.creation_time', kind: 'time' },
  deletion_time: { sql: 'templates.deletion_time', kind: 'time' },
  // The reference's sub-model relations: non-null exactly for templates of that kind.
  workabletemplate: { sql: 'CASE WHEN templates.graph IS NULL THEN templates.pk END', kind: 'int' },
  metatemplate: { sql: 'CASE WHEN templates.graph IS NOT NULL THEN templates.pk END', kind: 'int' },
};


export function getTemplate(db: Db, pk: number): TemplateRow | undefined {
  return cachedRows<TemplateRow>(db, 'SELECT * FROM templates WHERE pk = ?').get(pk);
}

/** The template, soft-deleted ones included, or 404 `Not found.`. */
export function requireTemplate(db: Db, pk: number): TemplateRow {
  const row = getTemplate(db, pk);
  if (!row) throw notFound();
  return row;
}

export function templateParameters(row: TemplateRow): Record<string, TemplateParameter> {
  return JSON.parse(row.parameters) as Record<string, TemplateParameter>;
}

/**
 * The reference's template JSON, plus `inputs` for `Run` templates (our extension). A meta-template has none of
 * the workable keys (`type`, `executor_class`, `required_packages`), as in the reference; ours adds
 * the workflow's `parameters` and `inputs` (its children's, prefixed `node:`) and its `graph`.
 */
export function templateJson(row: TemplateRow): TemplateJson | MetaTemplateJson {
  if (row.graph !== null) {
    return {
      ...templateBaseJson(row),
      parameters: templateParameters(row),
      inputs: JSON.parse(row.inputs ?? '[]') as TemplateInput[],
      ...graphJson({ ...row, graph: row.graph }),
    };
  }
  const json: TemplateJson = {
    ...templateBaseJson(row),
    type: row.type,
    executor_class: row.executor_class,
    required_packages: row.required_packages,
    parameters: templateParameters(row),
  };
  if (isRun(row)) json.inputs = row.inputs === null ? [] : (JSON.parse(row.inputs) as TemplateInput[]);
  return json;
}

function templateBaseJson(row: TemplateRow): TemplateBaseJson {
  return {
    pk: row.pk,
    name: row.name,
    version: row.version,
    description: row.description,
    scope: row.scope,
    domain: row.domain,
    licence: row.licence_pk,
    creator: row.creator,
    creation_time: row.creation_time,
    deletion_time: row.deletion_time,
  };
}

export function isRun(row: TemplateRow): boolean {
  return /^\s*Run\s*$/.test(row.type);
}

/** What a `Run` template declares, parsed (types were checked at import). */
export function declarationsOf(row: TemplateRow): Declarations {
  const inputs = row.inputs === null ? [] : (JSON.parse(row.inputs) as TemplateInput[]);
  const outputs = row.outputs === null ? {} : (JSON.parse(row.outputs) as Record<string, string>);
  return {
    inputs: inputs.map((input) => ({ name: input.name, types: input.types.map((t) => parseTypeString(t)), help: input.help ?? '' })),
    outputs: Object.fromEntries(Object.entries(outputs).map(([name, type]) => [name, parseTypeString(type)])),
  };
}

/** The template's contract with its type arguments bound. */
export function contractOf(row: TemplateRow): BoundContract {
  try {
    return BoundContract.bind(parseTypeString(row.type), declarationsOf(row));
  } catch (err) {
    // Only a template written to the database by hand can get here; imports are checked.
    throw new UfdlError('UFDL_ERR_TEMPLATE_BAD', `Template ${row.pk} has an unusable type '${row.type}': ${(err as Error).message}`, {
      cause: err,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Import

/** A template spec's common keys (the reference's JobTemplateSpec), its shape checked at the route edge. */
export interface TemplateCommon {
  name: string;
  version?: number | undefined;
  description?: string | undefined;
  scope: string;
  licence: string;
  domain?: string | undefined;
}

/** One parameter as a spec declares it, before its types are checked. */
export interface ParameterSpec {
  types: string[];
  default?: unknown;
  default_type?: string | undefined;
  const?: boolean | undefined;
  help: string;
}

/** A workable template's `specific`, its shape checked at the route edge (`routes/template-body.ts`). */
export interface WorkableSpecific {
  job_type: string;
  executor_class: string;
  required_packages: string;
  parameters: Record<string, ParameterSpec>;
  inputs?: { name: string; types: string[]; help?: string | undefined }[] | undefined;
  outputs?: Record<string, string> | undefined;
}

export type TemplateSpec = TemplateCommon & { specific: WorkableSpecific };

export function bad(detail: string, cause?: unknown): UfdlError {
  return new UfdlError('UFDL_ERR_TEMPLATE_BAD', `Bad job template: ${detail}`, cause === undefined ? undefined : { cause });
}

export function parseType(where: string, input: string): TypeNode {
  try {
    return parseJobType(input);
  } catch (err) {
    throw bad(`${where}: ${err instanceof TypeStringError ? err.message : String(err)}`, err);
  }
}

/** Output names become file names on the agent and URL segments on the server. */
function checkOutputName(where: string, name: string): void {
  const problem = outputNameProblem(name);
  if (problem !== undefined) throw bad(`${where}: the output name ${JSON.stringify(name)} ${problem}`);
}

/**
 * A parameter's default with its type resolved, or undefined when it has none: `default_type` must be
 * one of `types` and the value must fit it; without one, the first type the value fits (as the
 * reference: the first type, unless the value fits only a later one). `const` needs a default.
 */
export function resolveDefault(
  where: string,
  types: readonly TypeNode[],
  spec: { default?: unknown; default_type?: string | undefined; const?: boolean | undefined },
): { default: unknown; default_type: string } | undefined {
  const hasDefault = Object.hasOwn(spec, 'default');
  if (spec.const && !hasDefault) throw bad(`${where}: Must provide a default value for const parameters`);
  if (!hasDefault && spec.default_type !== undefined) throw bad(`${where}.default_type: given without a default`);
  if (!hasDefault) return undefined;
  let defaultType: TypeNode | undefined;
  if (spec.default_type !== undefined) {
    defaultType = parseType(`${where}.default_type`, spec.default_type);
    if (!types.some((allowed) => isSubtype(defaultType!, allowed))) {
      throw bad(`${where}.default_type: ${printType(defaultType)} is not one of the parameter's types`);
    }
    const problem = checkSimpleValue(defaultType, spec.default);
    if (problem) throw bad(`${where}.default: does not fit its default_type ${printType(defaultType)}: ${problem}`);
  } else {
    defaultType = types.find((type) => checkSimpleValue(type, spec.default) === undefined);
    if (!defaultType) throw bad(`${where}.default: fits none of the parameter's types (${types.map(printType).join(', ')})`);
  }
  return { default: spec.default, default_type: printType(defaultType) };
}

/** Check a shaped template spec's types, defaults and contract; returns them with every type string normalised. */
function checkTemplateSpec(spec: TemplateSpec): { parameters: Record<string, TemplateParameter>; inputs: TemplateInput[] | null; outputs: Record<string, string> | null; type: string } {
  const { specific } = spec;
  // The contract: its name is not a job type, its arguments are.
  let contractType: TypeNode;
  try {
    contractType = parseTypeString(specific.job_type);
  } catch (err) {
    throw bad(`specific.job_type: ${(err as Error).message}`, err);
  }
  for (const arg of contractType.args) {
    const unknown = unknownName(arg);
    if (unknown !== undefined) throw bad(`specific.job_type: Error parsing type-string "${specific.job_type}": unknown type name '${unknown}'`);
  }

  const parameters: Record<string, TemplateParameter> = {};
  for (const [name, param] of Object.entries(specific.parameters)) {
    const where = `specific.parameters.${name}`;
    const types = param.types.map((t, i) => parseType(`${where}.types[${i}]`, t));
    const out: TemplateParameter = { types: types.map(printType), help: param.help };
    const resolved = resolveDefault(where, types, param);
    if (resolved) Object.assign(out, resolved, { const: param.const ?? false });
    parameters[name] = out;
  }

  let inputs: TemplateInput[] | null = null;
  let outputs: Record<string, string> | null = null;
  const declared: Declarations = { inputs: [], outputs: {} };
  if (specific.inputs !== undefined) {
    inputs = [];
    const seen = new Set<string>();
    for (const [i, input] of specific.inputs.entries()) {
      if (seen.has(input.name)) throw bad(`specific.inputs[${i}].name: '${input.name}' is declared twice`);
      if (Object.hasOwn(parameters, input.name)) {
        throw bad(`specific.inputs[${i}].name: '${input.name}' is also a parameter; \${${input.name}} would be ambiguous`);
      }
      seen.add(input.name);
      const types = input.types.map((t, j) => parseType(`specific.inputs[${i}].types[${j}]`, t));
      inputs.push({ name: input.name, types: types.map(printType), help: input.help ?? '' });
      (declared.inputs as Declarations['inputs'][number][]).push({ name: input.name, types, help: input.help ?? '' });
    }
  }
  if (specific.outputs !== undefined) {
    outputs = {};
    for (const [name, type] of Object.entries(specific.outputs)) {
      checkOutputName('specific.outputs', name);
      const parsed = parseType(`specific.outputs.${name}`, type);
      outputs[name] = printType(parsed);
      (declared.outputs as Record<string, TypeNode>)[name] = parsed;
    }
  }
  let contract: BoundContract;
  try {
    contract = BoundContract.bind(contractType, declared);
  } catch (err) {
    throw bad(`specific.job_type: ${(err as Error).message}`, err);
  }
  checkAgentTemplate(specific.executor_class, parameters, Object.keys(contract.inputs()));
  if (contractType.name === 'Run' && inputs === null) inputs = [];
  return { parameters, inputs, outputs, type: printType(contractType) };
}

/**
 * Import a workable template (admin; meta-templates: `workflow-import.ts`). An active template with
 * the same name and version is soft-deleted first; without a version the template becomes the next
 * version of its name. One transaction.
 */
export function importTemplate(db: Db, spec: TemplateSpec, creator: number): TemplateRow {
  const { parameters, inputs, outputs, type } = checkTemplateSpec(spec);
  return insertTemplate(db, creator, spec, {
    type,
    executor_class: spec.specific.executor_class,
    required_packages: spec.specific.required_packages,
    parameters: JSON.stringify(parameters),
    inputs: inputs === null ? null : JSON.stringify(inputs),
    outputs: outputs === null ? null : JSON.stringify(outputs),
    graph: null,
  });
}

/** What a template of either kind stores beside the spec's common fields. */
export type TemplateBody = Pick<TemplateRow, 'type' | 'executor_class' | 'required_packages' | 'parameters' | 'inputs' | 'outputs' | 'graph'>;

/**
 * Insert a validated template as the given (or the next) version of its name; one immediate
 * transaction (it reads before it writes: begun deferred, a write of another replica in between
 * would make its own write fail, SQLITE_BUSY_SNAPSHOT).
 */
export function insertTemplate(db: Db, creator: number, spec: TemplateCommon, body: TemplateBody): TemplateRow {
  const licencePk = requireLicencePk(db, spec.licence);
  return db.transaction(() => {
    const now = nowIso();
    let version = spec.version;
    if (version === undefined) {
      const { max } = cachedStatement(db, 'SELECT MAX(version) AS max FROM templates WHERE name = ?').get(spec.name) as { max: number | null };
      version = (max ?? 0) + 1;
    }
    cachedStatement(db, 'UPDATE templates SET deletion_time = ? WHERE name = ? AND version = ? AND deletion_time IS NULL').run(now, spec.name, version);
    const result = cachedStatement(db,
        `INSERT INTO templates (name, version, description, scope, domain, licence, licence_pk, type, executor_class,
                                required_packages, parameters, inputs, outputs, graph, creator, creation_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        spec.name,
        version,
        spec.description ?? '',
        spec.scope,
        spec.domain ?? null,
        spec.licence,
        licencePk,
        body.type,
        body.executor_class,
        body.required_packages,
        body.parameters,
        body.inputs,
        body.outputs,
        body.graph,
        creator,
        now,
      );
    return getTemplate(db, Number(result.lastInsertRowid))!;
  }).immediate();
}

/** Soft delete (204 either way), reinstate, and hard delete (refused while jobs refer to it). */
export function softDeleteTemplate(db: Db, pk: number): void {
  cachedStatement(db, 'UPDATE templates SET deletion_time = ? WHERE pk = ? AND deletion_time IS NULL').run(nowIso(), pk);
}

/** Templates that share one name and version while all active (pks ascending). */
export interface ActiveVersionClash {
  name: string;
  version: number;
  pks: number[];
}

/**
 * Names and versions more than one active template answers to. Reinstate now refuses to make one,
 * but a database written before that may hold some: which of them a lookup by `name vN` finds is
 * not defined, so the server names them at start for an admin to soft-delete all but one.
 */
export function activeVersionClashes(db: Db): ActiveVersionClash[] {
  const rows = db
    .prepare(
      `SELECT t.name AS name, t.version AS version, t.pk AS pk FROM templates t
       WHERE t.deletion_time IS NULL
         AND (SELECT COUNT(*) FROM templates o WHERE o.name = t.name AND o.version = t.version AND o.deletion_time IS NULL) > 1
       ORDER BY t.name, t.version, t.pk`,
    )
    .all() as { name: string; version: number; pk: number }[];
  const clashes: ActiveVersionClash[] = [];
  for (const row of rows) {
    const last = clashes.at(-1);
    if (last && last.name === row.name && last.version === row.version) last.pks.push(row.pk);
    else clashes.push({ name: row.name, version: row.version, pks: [row.pk] });
  }
  return clashes;
}

/**
 * Reinstate (a no-op for an active template). Refused while another template of the same name and
 * version is active (an import of that version soft-deleted this one): two would answer to one
 * `name vN`, and an import or a workflow node naming that version would pick either. The
 * reference's unique constraint on active (name, version) refuses it too, as a 500. Immediate, as
 * insertTemplate: the check reads before the update writes.
 */
export function reinstateTemplate(db: Db, pk: number): TemplateRow {
  return db.transaction(() => {
    const row = requireTemplate(db, pk);
    if (row.deletion_time === null) return row;
    const active = cachedStatement(db, 'SELECT pk FROM templates WHERE name = ? AND version = ? AND deletion_time IS NULL').get(row.name, row.version) as
      | { pk: number }
      | undefined;
    if (active !== undefined) {
      throw new UfdlError(
        'UFDL_ERR_TEMPLATE_ACTIVE_VERSION',
        `Template ${pk} cannot be reinstated: template ${active.pk} is the active '${row.name}' v${row.version}; soft-delete it (DELETE /v1/job-templates/${active.pk}) first`,
      );
    }
    cachedStatement(db, 'UPDATE templates SET deletion_time = NULL WHERE pk = ?').run(pk);
    return requireTemplate(db, pk);
  }).immediate();
}

export function hardDeleteTemplate(db: Db, pk: number): TemplateRow {
  // Immediate, as insertTemplate: its checks read before its delete writes.
  return db.transaction(() => {
    const row = requireTemplate(db, pk);
    const { n } = cachedStatement(db, 'SELECT COUNT(*) AS n FROM jobs WHERE template = ?').get(pk) as { n: number };
    if (n > 0) {
      throw new UfdlError(
        'UFDL_ERR_TEMPLATE_IN_USE',
        `Template ${pk} cannot be hard-deleted: ${n} job${n === 1 ? '' : 's'} refer to it; soft-delete it (DELETE /v1/job-templates/${pk}) instead`,
      );
    }
    // A workflow names its children's templates by pk and creates their jobs as it runs: without the
    // template, every later create-job of the workflow would fail on the foreign key (a 500).
    const workflow = workflowUsing(db, pk);
    if (workflow !== undefined) {
      throw new UfdlError(
        'UFDL_ERR_TEMPLATE_IN_USE',
        `Template ${pk} cannot be hard-deleted: workflow template ${workflow} runs it; soft-delete it (DELETE /v1/job-templates/${pk}) instead`,
      );
    }
    cachedStatement(db, 'DELETE FROM templates WHERE pk = ?').run(pk);
    return row;
  }).immediate();
}

/**
 * A workflow's graph in its template JSON; one stored unreadable (`stored-graph.ts`) is left out, and
 * `graph_error` says why: a list of templates, or the dashboard, must not fail on one bad row, and
 * its workflow cannot run anyway (create-job refuses it, a run errors).
 */
function graphJson(row: StoredGraphRow): { graph: WorkflowGraphJson } | { graph_error: string } {
  try {
    return { graph: storedGraph(row) };
  } catch (err) {
    if (!(err instanceof UnreadableGraphError)) throw err;
    return { graph_error: err.message };
  }
}

/**
 * The pk of a meta-template (soft-deleted ones included) whose graph has a node of template `pk`.
 * A graph that cannot be read names no template a run could need: no run of it creates a job.
 */
function workflowUsing(db: Db, pk: number): number | undefined {
  const rows = cachedStatement(db, 'SELECT pk, name, version, graph FROM templates WHERE graph IS NOT NULL ORDER BY pk').all() as StoredGraphRow[];
  return rows.find((row) => {
    try {
      return Object.values(storedGraph(row).nodes).some((node) => node.template.pk === pk);
    } catch (err) {
      if (err instanceof UnreadableGraphError) return false;
      throw err;
    }
  })?.pk;
}
