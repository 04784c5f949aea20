/**
 * What the built-in executors share: resolving a job's values, reading the settings parameters, and
 * checking a template's `body` before any job of it is taken.
 */
import { resolveFlags } from '../../protocol/placeholders.js';
import { argvProblem } from '../../protocol/shell/body-checks.js';
import { inputEnvName, parameterEnvName } from '../../protocol/value-env.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { contractEnv } from '../child/env.js';
import { expansionValues, resolveInputs, resolveParameters, type ExpansionValues } from './template-params.js';
import { PrepareError, refusal, refusalFrom, type TemplateRefusal } from './errors.js';
import { readSettings, type ExecutorSettings } from './settings.js';
import type { ExecutorContext } from './types.js';

/** A job's values, resolved. */
export interface ResolvedJob {
  parameters: Record<string, unknown>;
  /** Input values by name (a downloaded input as its local path). */
  inputs: Record<string, unknown>;
  settings: ExecutorSettings;
  /** The values `${…}` may name. */
  values: ExpansionValues;
}

/**
 * Resolve parameters, inputs and settings. With `pathKeys`, the contract variables (`UFDL_OUTPUT_DIR`,
 * …) are expandable too, at the lowest precedence: an argv has no shell to read the environment. A
 * shell script reads them from its environment instead, so the `Shell` executor leaves them out.
 */
export function resolveJob(job: JobJson, template: TemplateJson, ctx: ExecutorContext, pathKeys: boolean): ResolvedJob {
  const parameters = resolveParameters(job, template);
  const inputs = resolveInputs(job, ctx.inputPaths);
  const extras: Record<string, string> = pathKeys ? { ...contractEnv(ctx.dir, ctx.gpu) } : {};
  return { parameters, inputs, settings: readSettings(parameters), values: expansionValues(parameters, inputs, extras) };
}

/** Is `value` an argv: an array of strings? */
export function isArgv(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** The `body` parameter as an argv, or a {@link PrepareError}. */
export function argvParameter(parameters: Readonly<Record<string, unknown>>, name: string): string[] {
  const value = parameters[name];
  if (!isArgv(value)) {
    throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', `Parameter '${name}' must be an array of strings (Array<str>)`, {
      subject: name,
    });
  }
  return value;
}

/** How an executor uses a template parameter, for {@link checkTemplate}. */
export type ParameterUse = 'argv' | 'optional-argv' | 'script' | 'string';

/**
 * Static checks on a template: each parameter the executor needs is declared, and its default (when it
 * has one) has the right shape; the settings parameters' defaults are usable. Returns why the
 * template cannot run, with its agent code, or `undefined`.
 */
export function checkTemplate(template: TemplateJson, uses: Readonly<Record<string, ParameterUse>>): TemplateRefusal | undefined {
  const declared = template.parameters;
  for (const [name, use] of Object.entries(uses)) {
    const parameter = declared[name];
    if (parameter === undefined) {
      if (use === 'optional-argv') continue;
      return refusal('UFDL_ERR_AGENT_PARAM_MISSING', `template '${template.name}' declares no '${name}' parameter, which ${template.executor_class} needs`);
    }
    if (!Object.hasOwn(parameter, 'default')) continue; // the job must supply it; checked at prepare
    const value = parameter.default;
    const ok =
      use === 'script'
        ? typeof value === 'string' || isArgv(value)
        : use === 'string'
          ? typeof value === 'string' && value !== ''
          : isArgv(value);
    if (!ok) return refusal('UFDL_ERR_AGENT_PARAM_BAD', `the default of parameter '${name}' of template '${template.name}' is not ${describeUse(use)}`);
  }
  const defaults: Record<string, unknown> = {};
  for (const [name, parameter] of Object.entries(declared)) {
    if (Object.hasOwn(parameter, 'default')) defaults[name] = parameter.default;
  }
  try {
    readSettings(defaults);
  } catch (err) {
    return refusalFrom(err, `template '${template.name}': `);
  }
  return undefined;
}

function describeUse(use: ParameterUse): string {
  switch (use) {
    case 'script':
      return 'a script (a string, or an array of lines)';
    case 'string':
      return 'a non-empty string';
    default:
      return 'an argv (an array of strings)';
  }
}

/**
 * Why `argv` (a `body` before expansion) would hand a job's value to a program as code or let it
 * choose the program (see `argvProblem`), with flags decided by `truth`; or `undefined`.
 */
export function argvCodeProblem(
  argv: readonly string[],
  truth: (name: string, literal: string) => boolean,
  names: { parameters: Readonly<Record<string, unknown>>; inputs: readonly string[] },
): string | undefined {
  const isParameter = (name: string): boolean => Object.hasOwn(names.parameters, name);
  const entries = argv.map((entry) => resolveFlags(entry, truth)).filter((entry) => entry !== '');
  return argvProblem(
    entries,
    (name) => isParameter(name) || names.inputs.includes(name),
    (name) => (isParameter(name) ? parameterEnvName(name) : inputEnvName(name)),
  );
}
