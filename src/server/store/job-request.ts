/**
 * A create-job request (`POST /v1/job-templates/{pk}/create-job`) checked
 * against what a template declares — its inputs and parameters, whatever its kind — in the
 * reference's order:
 *
 *  0. the body's shape (strict; 400), checked at the route edge (`routes/create-job-body.ts`);
 *  1. every type string parses and names known types (400 `Error parsing type-string …`);
 *  2. each declared input is present (406) with a type allowed for it (406); extra inputs are dropped;
 *  3. per declared parameter: missing without default (400), value for a const one (406), a type not
 *     allowed (406); then names the template does not define (406);
 *  4. ours (docs/COMPATIBILITY.md): each value fits its simple type (400 `UFDL_ERR_CREATE_BAD_VALUE` naming it),
 *     and a `JobOutput<…>` value names an existing, live job output (400; checked by the caller
 *     inside its insert transaction, {@link checkJobOutputsLive}).
 *
 * A missing `parameter_values` is `{}` (bug B3: the reference crashes). Type strings are normalised.
 */
import { UfdlError } from '../../protocol/errors.js';
import { checkSimpleValue, isSubtype, printType, TypeStringError, type TypeNode } from '../../protocol/type-string.js';
import type { TemplateParameter, TypedValue } from '../../protocol/wire.js';
import { parseJobType } from '../job-types.js';
import { cachedStatement, type Db } from './db.js';
import type { InputDeclaration } from './template-declarations.js';

/** A create-job body that passed its shape check at the route edge (`routes/create-job-body.ts`). */
export interface CreateJobRequest {
  input_values: Record<string, { value: unknown; type: string }>;
  parameter_values?: Record<string, { value: unknown; type: string }> | undefined;
  description?: string | undefined;
  /** Accepted for compatibility, otherwise unused (the reference's print/e-mail notifications). */
  notification_override?: unknown;
  /** Meta-templates only: must name nodes of the workflow. */
  child_notification_overrides?: Record<string, unknown> | undefined;
}

/** A request that passed every check: the values to store, type strings normalised. */
export interface CheckedValues {
  inputs: Record<string, TypedValue>;
  parameters: Record<string, TypedValue>;
}

export function invalidJobInput(detail: string): UfdlError {
  return new UfdlError('UFDL_ERR_CREATE_INVALID_INPUT', detail);
}

function parseAll(values: Record<string, { type: string }>): Map<string, TypeNode> {
  const parsed = new Map<string, TypeNode>();
  for (const [name, { type }] of Object.entries(values)) {
    try {
      parsed.set(name, parseJobType(type));
    } catch (err) {
      if (err instanceof TypeStringError) throw new UfdlError('UFDL_ERR_TYPE_PARSE', err.message, { cause: err });
      throw err;
    }
  }
  return parsed;
}

function checkValue(kind: 'input' | 'parameter', name: string, type: TypeNode, value: unknown): void {
  const problem = checkSimpleValue(type, value);
  if (problem) {
    throw new UfdlError('UFDL_ERR_CREATE_BAD_VALUE', `Bad value for ${kind} '${name}' of type ${printType(type)}: ${problem}, got ${JSON.stringify(value)?.slice(0, 100)}`);
  }
}

/** Checks 1–4 (but the job outputs' existence) of `request` against the declared inputs and parameters. */
export function checkJobValues(
  inputs: Record<string, InputDeclaration>,
  parameters: Record<string, TemplateParameter>,
  request: CreateJobRequest,
): CheckedValues {
  const inputValues = request.input_values;
  const parameterValues = request.parameter_values ?? {};

  // 1. Types parse.
  const inputTypes = parseAll(inputValues);
  const parameterTypes = parseAll(parameterValues);

  // 2. Declared inputs.
  const storedInputs: Record<string, TypedValue> = {};
  for (const [name, input] of Object.entries(inputs)) {
    const type = inputTypes.get(name);
    if (!type) throw invalidJobInput(`No input value provided for input '${name}'`);
    if (!input.types.some((allowed) => isSubtype(type, allowed))) {
      throw invalidJobInput(`Input '${name}' received value of invalid type ${printType(type)}`);
    }
    storedInputs[name] = { value: inputValues[name]!.value, type: printType(type) };
  }

  // 3. Parameters, in the template's order, then unknown names.
  for (const [name, parameter] of Object.entries(parameters)) {
    const type = parameterTypes.get(name);
    if (!type) {
      if (!Object.hasOwn(parameter, 'default')) {
        throw new UfdlError('UFDL_ERR_CREATE_MISSING_PARAM', `Required parameter '${name}' is missing`);
      }
      continue;
    }
    if (parameter.const) throw invalidJobInput(`${name} is const`);
    const allowed = parameter.types.map((t) => parseJobType(t));
    if (!allowed.some((a) => isSubtype(type, a))) throw invalidJobInput(`Parameter type ${printType(type)} is invalid for '${name}'`);
  }
  const unknown = Object.keys(parameterValues).filter((name) => !Object.hasOwn(parameters, name));
  if (unknown.length > 0) throw invalidJobInput(`Unknown job parameters: ${unknown.join(', ')}`);

  // 4. Values fit their types.
  const storedParameters: Record<string, TypedValue> = {};
  for (const [name, typed] of Object.entries(storedInputs)) checkValue('input', name, inputTypes.get(name)!, typed.value);
  for (const [name, pair] of Object.entries(parameterValues)) {
    const type = parameterTypes.get(name)!;
    checkValue('parameter', name, type, pair.value);
    storedParameters[name] = { value: pair.value, type: printType(type) };
  }
  return { inputs: storedInputs, parameters: storedParameters };
}

/** Check 4, second half: every `JobOutput<…>` value names a live job output. Run inside the insert's transaction. */
export function checkJobOutputsLive(db: Db, values: CheckedValues): void {
  for (const [kind, typedValues] of [['input', values.inputs], ['parameter', values.parameters]] as const) {
    for (const [name, typed] of Object.entries(typedValues)) {
      if (!typed.type.startsWith('JobOutput')) continue;
      const live = cachedStatement(db, 'SELECT 1 FROM outputs WHERE pk = ? AND removed = 0 AND deletion_time IS NULL').get(typed.value);
      if (!live) {
        throw new UfdlError('UFDL_ERR_CREATE_BAD_VALUE', `Bad value for ${kind} '${name}' of type ${typed.type}: no job output with pk ${String(typed.value)}`);
      }
    }
  }
}
