/**
 * `POST /v1/job-templates/{pk}/create-job` (ufdl-server.md §5.4): validate a job request against its
 * template, in the reference's order, and store the job. The checks, in order:
 *
 *  0. the body's shape (strict; 400), `child_notification_overrides` on a workable template (406);
 *  1. every type string parses and names known types (400 `Error parsing type-string …`);
 *  2. each contract input is present (406) with a type allowed for it (406); extra inputs are dropped;
 *  3. per template parameter: missing without default (400), value for a const one (406), a type not
 *     allowed (406); then names the template does not define (406);
 *  4. ours (DESIGN §2): each value fits its simple type (400 `UFDL_ERR_CREATE_BAD_VALUE` naming it),
 *     and a `JobOutput<…>` value names an existing, live job output (400).
 *
 * A missing `parameter_values` is `{}` (bug B3: the reference crashes). Type strings are stored
 * normalised. Everything happens in one transaction, so a rejected request stores nothing.
 */
import { z } from 'zod';
import { UfdlError } from '../../protocol/errors.js';
import { checkSimpleValue, isSubtype, printType, TypeStringError, type TypeNode } from '../../protocol/type-string.js';
import type { TypedValue } from '../../protocol/wire.js';
import { bodyOrEmpty } from '../field-errors.js';
import { parseWith } from '../http-errors.js';
import { parseJobType } from '../job-types.js';
import { cachedStatement, nowIso, type Db } from './db.js';
import { contractOf, templateParameters, type TemplateRow } from './templates.js';

const ValueTypePairSchema = z.strictObject({
  // Required although any JSON value (null included) is fine: `z.unknown()` alone would let it be absent.
  value: z.unknown().refine((v) => v !== undefined, { error: 'Required' }),
  type: z.string({ error: 'must be a type string' }),
});

const NotificationSchema = z.record(z.string(), z.unknown());
const TRANSITIONS = ['on_acquire', 'on_release', 'on_start', 'on_progress', 'on_finish', 'on_error', 'on_reset', 'on_abort', 'on_cancel'] as const;
const NotificationOverrideSchema = z.strictObject({
  actions: z.partialRecord(z.enum(TRANSITIONS), z.array(NotificationSchema)),
  keep_default: z.boolean().optional(),
});

const CreateJobSchema = z.strictObject({
  input_values: z.record(z.string(), ValueTypePairSchema),
  parameter_values: z.record(z.string(), ValueTypePairSchema).optional(),
  description: z.string().optional(),
  // Accepted for compatibility; web-socket watching works for every job here (DESIGN §2), and the
  // print/e-mail notifications of the reference are not sent.
  notification_override: NotificationOverrideSchema.optional(),
  child_notification_overrides: z.record(z.string(), NotificationOverrideSchema).optional(),
});

export type CreateJobBody = z.infer<typeof CreateJobSchema>;

function invalid(detail: string): UfdlError {
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

/** Validate `body` against `template` and insert the job; returns its pk. */
export function createJobFromTemplate(db: Db, template: TemplateRow, body: unknown, creator: number): number {
  const request = parseWith(CreateJobSchema, bodyOrEmpty(body));
  if (request.child_notification_overrides !== undefined) {
    throw invalid('Attempted an add child notification overrides to a non-meta-job');
  }
  const inputValues = request.input_values;
  const parameterValues = request.parameter_values ?? {};

  // 1. Types parse.
  const inputTypes = parseAll(inputValues);
  const parameterTypes = parseAll(parameterValues);

  // 2. Contract inputs.
  const storedInputs: Record<string, TypedValue> = {};
  for (const [name, input] of Object.entries(contractOf(template).inputs())) {
    const type = inputTypes.get(name);
    if (!type) throw invalid(`No input value provided for input '${name}'`);
    if (!input.types.some((allowed) => isSubtype(type, allowed))) {
      throw invalid(`Input '${name}' received value of invalid type ${printType(type)}`);
    }
    storedInputs[name] = { value: inputValues[name]!.value, type: printType(type) };
  }

  // 3. Parameters, in the template's order, then unknown names.
  const declared = templateParameters(template);
  for (const [name, parameter] of Object.entries(declared)) {
    const type = parameterTypes.get(name);
    if (!type) {
      if (!Object.hasOwn(parameter, 'default')) {
        throw new UfdlError('UFDL_ERR_CREATE_MISSING_PARAM', `Required parameter '${name}' is missing`);
      }
      continue;
    }
    if (parameter.const) throw invalid(`${name} is const`);
    const allowed = parameter.types.map((t) => parseJobType(t));
    if (!allowed.some((a) => isSubtype(type, a))) throw invalid(`Parameter type ${printType(type)} is invalid for '${name}'`);
  }
  const unknown = Object.keys(parameterValues).filter((name) => !Object.hasOwn(declared, name));
  if (unknown.length > 0) throw invalid(`Unknown job parameters: ${unknown.join(', ')}`);

  // 4. Values fit their types; job outputs exist.
  const storedParameters: Record<string, TypedValue> = {};
  for (const [name, typed] of Object.entries(storedInputs)) checkValue('input', name, inputTypes.get(name)!, typed.value);
  for (const [name, pair] of Object.entries(parameterValues)) {
    const type = parameterTypes.get(name)!;
    checkValue('parameter', name, type, pair.value);
    storedParameters[name] = { value: pair.value, type: printType(type) };
  }

  return db.transaction(() => {
    for (const [kind, values] of [['input', storedInputs], ['parameter', storedParameters]] as const) {
      for (const [name, typed] of Object.entries(values)) {
        if (!typed.type.startsWith('JobOutput')) continue;
        const live = cachedStatement(db, 'SELECT 1 FROM outputs WHERE pk = ? AND removed = 0 AND deletion_time IS NULL').get(typed.value);
        if (!live) {
          throw new UfdlError('UFDL_ERR_CREATE_BAD_VALUE', `Bad value for ${kind} '${name}' of type ${typed.type}: no job output with pk ${String(typed.value)}`);
        }
      }
    }
    const result = cachedStatement(db,
        `INSERT INTO jobs (template, description, input_values, parameter_values, creator, creation_time)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(template.pk, request.description ?? '', JSON.stringify(storedInputs), JSON.stringify(storedParameters), creator, nowIso());
    return Number(result.lastInsertRowid);
  })();
}
