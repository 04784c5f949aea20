/**
 * `--param k=v` and `--input k=v` of `submit`: each value is parsed by the type the template declares
 * for it (`int`, `float`, `bool`, `str`, `JSON`, `Array<…>`, `JobOutput<…>` = an output pk, `PK<…>`),
 * and sent as `{value, type}`. The inputs of a contract template (`Train`, `Predict`), which the
 * template JSON does not list, come from its contract (`type`), on any server. `k:TYPE=v` names the
 * type explicitly.
 */
import { parseTypeString, printType, checkSimpleValue, TypeStringError, type TypeNode } from '../protocol/type-string.js';
import { contractInputTypes } from '../protocol/contracts.js';
import type { TemplateJson, TypedValue } from '../protocol/wire.js';
import { usageError } from './cli-error.js';

export interface Assignment {
  name: string;
  /** An explicit type (`k:TYPE=v`). */
  type: string | undefined;
  raw: string;
}

/**
 * `k=v` or `k:TYPE=v`; the value is everything after the first `=` and may be empty. A workflow's
 * names hold colons themselves (`train:epochs`): a declared name is matched whole first, so
 * `train:epochs=3` and `train:epochs:int=3` both name `train:epochs`.
 */
export function parseAssignment(text: string, option: string, declared: readonly string[] = []): Assignment {
  const eq = text.indexOf('=');
  if (eq <= 0) throw usageError(`${option} expects NAME=VALUE (or NAME:TYPE=VALUE), got ${JSON.stringify(text)}`);
  const left = text.slice(0, eq).trim();
  const known = declared.filter((name) => left === name || left.startsWith(`${name}:`)).sort((a, b) => b.length - a.length)[0];
  let colon = known !== undefined ? (left === known ? -1 : known.length) : left.indexOf(':');
  // Neither `train:lr` nor `train` is declared: name the whole thing in the error, not `train`.
  if (known === undefined && declared.length > 0 && declared.some((name) => name.includes(':'))) colon = -1;
  const name = (colon < 0 ? left : left.slice(0, colon)).trim();
  const type = colon < 0 ? undefined : left.slice(colon + 1).trim();
  if (name === '') throw usageError(`${option} expects NAME=VALUE, got ${JSON.stringify(text)}`);
  if (type === '') throw usageError(`${option} ${name}: the type after ':' is empty`);
  return { name, type, raw: text.slice(eq + 1) };
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/**
 * Convert the text `raw` to a value of `type`; throws an Error whose message says what was expected.
 * Types the CLI does not know (domain types such as `Dataset<…>`) take JSON, else the text as is.
 */
export function coerceValue(raw: string, type: TypeNode): unknown {
  const text = raw.trim();
  const json = (): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error('expected JSON (quote strings, e.g. \'"text"\')');
    }
  };
  let value: unknown;
  switch (type.name) {
    case 'str':
    case 'Name':
      return raw;
    case 'int':
      if (!/^[-+]?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new Error('expected an integer');
      return Number(text);
    case 'float':
      value = text === '' ? NaN : Number(text);
      if (!Number.isFinite(value)) throw new Error('expected a number');
      return value;
    case 'bool':
      if (TRUE.has(text.toLowerCase())) return true;
      if (FALSE.has(text.toLowerCase())) return false;
      throw new Error('expected true or false');
    case 'JobOutput':
    case 'PK':
      if (!/^[1-9]\d*$/.test(text)) throw new Error(type.name === 'JobOutput' ? 'expected the pk of a job output' : 'expected a primary key');
      return Number(text);
    case 'JSON':
      return json();
    case 'Array': {
      value = json();
      const problem = checkSimpleValue(type, value);
      if (problem) throw new Error(problem);
      return value;
    }
    default:
      try {
        return JSON.parse(text);
      } catch {
        return raw;
      }
  }
}

/**
 * The `{value, type}` of one assignment, trying the declared types in order — a string type last,
 * since any text is a string. Throws a usage error naming the option and every type's objection.
 */
export function typedValue(assignment: Assignment, declared: readonly string[], option: string): TypedValue {
  const candidates = assignment.type !== undefined ? [assignment.type] : [...declared.filter((t) => !isStringType(t)), ...declared.filter(isStringType)];
  if (candidates.length === 0) {
    throw usageError(`${option} ${assignment.name}: the template declares no type for it; give one: ${assignment.name}:TYPE=VALUE`);
  }
  const problems: string[] = [];
  for (const candidate of candidates) {
    let type: TypeNode;
    try {
      type = parseTypeString(candidate);
    } catch (err) {
      if (err instanceof TypeStringError) throw usageError(`${option} ${assignment.name}: ${err.message}`);
      throw err;
    }
    try {
      return { value: coerceValue(assignment.raw, type), type: printType(type) };
    } catch (err) {
      problems.push(`as ${printType(type)}: ${(err as Error).message}`);
    }
  }
  throw usageError(`${option} ${assignment.name}=${assignment.raw}: not a valid value (${problems.join('; ')})`);
}

function isStringType(type: string): boolean {
  return /^\s*(str|Name)\b/.test(type);
}

/** `parameter_values` for create-job: known, non-const parameters only. */
export function parameterValues(template: TemplateJson, texts: readonly string[]): Record<string, TypedValue> {
  const values: Record<string, TypedValue> = {};
  const declared = template.parameters ?? {};
  for (const text of texts) {
    const assignment = parseAssignment(text, '--param', Object.keys(declared));
    const parameter = declared[assignment.name];
    if (!parameter) {
      const known = Object.entries(declared)
        .filter(([, p]) => !p.const)
        .map(([name]) => name);
      throw usageError(`--param ${assignment.name}: template '${template.name}' has no such parameter (settable: ${known.join(', ') || 'none'})`);
    }
    if (parameter.const) throw usageError(`--param ${assignment.name}: the parameter is const in template '${template.name}'`);
    if (assignment.name in values) throw usageError(`--param ${assignment.name} is given twice`);
    values[assignment.name] = typedValue(assignment, parameter.types, '--param');
  }
  const missing = Object.entries(declared)
    .filter(([name, p]) => !('default' in p) && !p.const && !(name in values))
    .map(([name, p]) => `${name} (${p.types.join(' | ')})`);
  if (missing.length > 0) throw usageError(`template '${template.name}' needs --param for: ${missing.join(', ')}`);
  return values;
}

/**
 * The inputs of a template: a `Run` template lists them; a contract template's come from its
 * contract (`Train<D, F>` takes `dataset: PK<Dataset<D>>`, …); undefined for neither.
 */
export function templateInputs(template: TemplateJson): { name: string; types: string[] }[] | undefined {
  if (template.inputs !== undefined) return template.inputs;
  const fromContract = contractInputTypes(template.type);
  return fromContract && Object.entries(fromContract).map(([name, types]) => ({ name, types }));
}

/**
 * `input_values` for create-job: every input of the template must be given (see
 * {@link templateInputs}); where the template's inputs are unknown, each needs an explicit type
 * (`--input name:TYPE=VALUE`).
 */
export function inputValues(template: TemplateJson, texts: readonly string[]): Record<string, TypedValue> {
  const values: Record<string, TypedValue> = {};
  const declared = templateInputs(template);
  for (const text of texts) {
    const assignment = parseAssignment(text, '--input', (declared ?? []).map((input) => input.name));
    if (assignment.name in values) throw usageError(`--input ${assignment.name} is given twice`);
    if (declared === undefined) {
      if (assignment.type === undefined) {
        throw usageError(`--input ${assignment.name}: template '${template.name}' does not list its inputs; give the type: --input ${assignment.name}:TYPE=VALUE`);
      }
      values[assignment.name] = typedValue(assignment, [], '--input');
      continue;
    }
    const input = declared.find((i) => i.name === assignment.name);
    if (!input) {
      throw usageError(`--input ${assignment.name}: template '${template.name}' has no such input (inputs: ${declared.map((i) => i.name).join(', ') || 'none'})`);
    }
    values[assignment.name] = typedValue(assignment, input.types, '--input');
  }
  const missing = (declared ?? []).filter((i) => !(i.name in values)).map((i) => `${i.name} (${i.types.join(' | ')})`);
  if (missing.length > 0) throw usageError(`template '${template.name}' needs --input for: ${missing.join(', ')}`);
  return values;
}
