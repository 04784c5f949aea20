/**
 * Template parameters and body expansion (the reference's expansion rules; docs/COMPATIBILITY.md).
 *
 * - A parameter's value is the job's `parameter_values[name].value`, else the template's
 *   `parameters[name].default`, else a {@link PrepareError} naming it. The reference server stores only
 *   what the client sent, so the worker is where defaults are applied.
 * - `${name}` becomes the string form of a parameter or input value; `${+flag:text}` keeps `text` when
 *   the flag is true, `${-flag:text}` when it is false. `text` may itself contain `${name}`.
 * - In an argv, entries that expand to the empty string are dropped, so an optional flag can vanish;
 *   an entry that is exactly `${name}` with an array value becomes one entry per element.
 *
 * Placeholders that name no known value are left untouched, as the reference does: a `Shell` body is
 * full of `${HOME}`-style shell variables that are not ours. A flag that names nothing is an error,
 * though, because `${+x:…}` is never valid shell and silently keeping it would hide a typo.
 */
import { FLAG_BODY, mapPlaceholders, PLAIN_BODY, WHOLE_PLACEHOLDER } from '../../protocol/placeholders.js';
import { stringifyValue } from '../../protocol/value-env.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { PrepareError } from './errors.js';

/** Resolved values by name, as placed into a body. */
export type ExpansionValues = ReadonlyMap<string, unknown>;

/**
 * Resolve every parameter the template declares: the job's value wins, else the template's default.
 * @throws PrepareError `UFDL_ERR_AGENT_PARAM_MISSING` naming the first parameter that has neither.
 */
export function resolveParameters(job: JobJson, template: TemplateJson): Record<string, unknown> {
  const given = job.parameter_values ?? {};
  const resolved: Record<string, unknown> = {};
  for (const [name, declared] of Object.entries(template.parameters)) {
    if (Object.hasOwn(given, name)) {
      resolved[name] = given[name]!.value;
    } else if (Object.hasOwn(declared, 'default')) {
      // `null` is a legitimate default; only an absent key means "no default".
      resolved[name] = declared.default;
    } else {
      throw new PrepareError(
        'UFDL_ERR_AGENT_PARAM_MISSING',
        `Parameter '${name}' has no value in job ${job.pk} and no default in template '${template.name}'`,
        { subject: name },
      );
    }
  }
  return resolved;
}

/**
 * The job's input values by name; an input that was downloaded (a `JobOutput<…>`) is represented by
 * its local path, which is what a program needs.
 */
export function resolveInputs(job: JobJson, inputPaths: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  const inputs: Record<string, unknown> = {};
  for (const [name, typed] of Object.entries(job.input_values)) {
    inputs[name] = Object.hasOwn(inputPaths, name) ? inputPaths[name] : typed.value;
  }
  return inputs;
}

/**
 * Merge the sources of `${…}` values. Precedence: parameters, then inputs, then executor extras (the
 * reference's rule that executor-supplied keys never override template parameters).
 */
export function expansionValues(
  parameters: Readonly<Record<string, unknown>>,
  inputs: Readonly<Record<string, unknown>> = {},
  extras: Readonly<Record<string, unknown>> = {},
): ExpansionValues {
  const values = new Map<string, unknown>();
  for (const source of [extras, inputs, parameters]) {
    for (const [name, value] of Object.entries(source)) values.set(name, value);
  }
  return values;
}

/** Expand the placeholders of one string (see the module comment for the rules). */
export function expandString(text: string, values: ExpansionValues): string {
  // An unterminated `${` stays literal text (e.g. a shell script's own syntax).
  return mapPlaceholders(text, (body, literal) => expandPlaceholder(body, literal, values));
}

/**
 * Expand every entry of an argv. Entries that become empty are dropped; an entry that is exactly
 * `${name}` with an array value is spliced in as one entry per element.
 */
export function expandArgv(argv: readonly string[], values: ExpansionValues): string[] {
  const out: string[] = [];
  for (const entry of argv) {
    const whole = WHOLE_PLACEHOLDER.exec(entry);
    const value = whole ? values.get(whole[1]!) : undefined;
    if (whole && Array.isArray(value)) {
      for (const element of value) {
        const s = stringifyValue(element);
        if (s !== '') out.push(s);
      }
      continue;
    }
    const expanded = expandString(entry, values);
    if (expanded !== '') out.push(expanded);
  }
  return out;
}

function expandPlaceholder(body: string, literal: string, values: ExpansionValues): string {
  const plain = PLAIN_BODY.exec(body);
  if (plain) {
    const name = plain[1]!;
    return values.has(name) ? stringifyValue(values.get(name)) : literal;
  }
  const flag = FLAG_BODY.exec(body);
  if (flag) {
    const [, sign, name, kept] = flag as unknown as [string, '+' | '-', string, string];
    return flagTruth(values)(name, literal) === (sign === '+') ? expandString(kept, values) : '';
  }
  // Anything else (`${HOME:-x}`, `${#arr}`) is somebody else's syntax.
  return literal;
}

/**
 * A flag's truth from the job's values, for `resolveFlags`.
 * @throws PrepareError `UFDL_ERR_AGENT_PARAM_UNKNOWN` for a flag that names nothing,
 *   `UFDL_ERR_AGENT_PARAM_BAD` for one whose value is not a boolean.
 */
export function flagTruth(values: ExpansionValues): (name: string, literal: string) => boolean {
  return (name, literal) => {
    if (!values.has(name)) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNKNOWN', `'${literal}' names no parameter or input '${name}'`, { subject: name });
    }
    return toFlag(name, values.get(name));
  };
}

/** A flag's truth: JSON booleans, or the strings `true`/`false` in any case. */
function toFlag(name: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  throw new PrepareError(
    'UFDL_ERR_AGENT_PARAM_BAD',
    `Parameter '${name}' is used as a flag but its value ${JSON.stringify(value)} is not a boolean`,
    { subject: name },
  );
}
