/**
 * `ufdl_agent.Shell`: the `body` parameter is a script (a `str`, or an array of lines joined with
 * newlines) run by `/bin/sh -c`.
 *
 * A job's values reach the script through its environment, never through its text: every parameter
 * is `UFDL_PARAM_<name>` and every input `UFDL_INPUT_<name>`, and each `${name}` of the script is
 * rewritten to a reference to that variable — `"${UFDL_PARAM_name}"` in an unquoted word (one word,
 * never split or globbed), `${UFDL_PARAM_name}` inside double quotes, a here-document or a comment.
 * The shell substitutes the value as data and never parses it. Placements where no rewriting is safe
 * (single quotes, a quoted here-document, `eval`, the code of `sh -c` or `python3 -c`, the program
 * name) fail the job, and the server refuses such templates at import; in arithmetic the value must
 * be an integer. Text kept by `${+flag:text}` is the template's own and is inserted before the script
 * is read. Other `${…}` (`${HOME}`, `${UFDL_OUTPUT_DIR}`) are left for the shell.
 */
import { resolveFlags } from '../../protocol/placeholders.js';
import { firstRefusal, placePlaceholders, rewriteScript, ShellScanError, type Placement } from '../../protocol/shell/placements.js';
import { isArithmeticSafe, refusalMessage, shellScriptProblem } from '../../protocol/shell/body-checks.js';
import { inputEnvName, parameterEnvName, valueEnvClash } from '../../protocol/value-env.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv, valueEnv, type ValueEnv } from '../child/env.js';
import { stringifyValue } from '../../protocol/value-env.js';
import { flagTruth, type ExpansionValues } from './template-params.js';
import { checkTemplate, isArgv, resolveJob } from './common.js';
import { PrepareError, refusal, type TemplateRefusal } from './errors.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const SHELL_EXECUTOR_CLASS = 'ufdl_agent.Shell';

/** The shell that runs scripts; POSIX `sh`, as the wrapper uses. */
export const SCRIPT_SHELL = '/bin/sh';

/** The `ufdl_agent.Shell` executor. */
export const shellExecutor: Executor = {
  executorClass: SHELL_EXECUTOR_CLASS,

  check(template: TemplateJson): TemplateRefusal | undefined {
    const problem = checkTemplate(template, { body: 'script' });
    if (problem !== undefined) return problem;
    const inputs = (template.inputs ?? []).map((input) => input.name);
    const clash = valueEnvClash(Object.keys(template.parameters), inputs);
    // As `prepare` says of the same clash: one variable would carry two values.
    if (clash !== undefined) return refusal('UFDL_ERR_AGENT_PARAM_UNSAFE', `template '${template.name}': ${clash}`);
    const body = template.parameters['body'];
    const script = body === undefined || !Object.hasOwn(body, 'default') ? undefined : scriptOf(body.default);
    if (script === undefined) return undefined; // the job supplies the script; checked when it runs
    const unsafe = shellScriptProblem(script, { parameters: template.parameters, inputs, variable: (name) => variableOf(name, template.parameters) });
    return unsafe === undefined ? undefined : refusal('UFDL_ERR_AGENT_PARAM_UNSAFE', `template '${template.name}': ${unsafe}`);
  },

  prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
    const { parameters, inputs, settings, values } = resolveJob(job, template, ctx, false);
    const script = scriptOf(parameters['body']);
    if (script === undefined) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'body' must be a script (str, or Array<str> of lines)", {
        subject: 'body',
      });
    }
    const clash = valueEnvClash(Object.keys(parameters), Object.keys(inputs));
    if (clash !== undefined) throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNSAFE', clash);
    checkIntegers(template, parameters);
    const env = valueEnv(parameters, inputs);
    // `$0` names the job in `ps` and in the shell's own error messages.
    const argv = [SCRIPT_SHELL, '-c', scriptWithReferences(resolveFlags(script, flagTruth(values)), values, env), `ufdl-job-${job.pk}`];
    return {
      spec: { argv, env: childEnv(contractEnv(ctx.dir, ctx.gpu), env.env), cwd: ctx.dir.root, dir: ctx.dir },
      settings,
      parameters,
    };
  },
};

/**
 * A parameter declared `int` must hold an integer: a script may use it in arithmetic through a
 * variable (`n=${n}; echo $((n + 1))`), and bash evaluates a variable's text there as an expression.
 * The embedded server checks values at create-job; the reference does not.
 */
function checkIntegers(template: TemplateJson, parameters: Readonly<Record<string, unknown>>): void {
  for (const [name, declared] of Object.entries(template.parameters)) {
    if (!Array.isArray(declared.types) || declared.types.length === 0 || !declared.types.every((type) => type === 'int')) continue;
    const text = stringifyValue(parameters[name]);
    if (text !== '' && !isArithmeticSafe(text)) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', `Parameter '${name}' is declared int, but its value ${JSON.stringify(text.slice(0, 80))} is not an integer`, {
        subject: name,
      });
    }
  }
}

/** The script of a `body` value: a string, or lines; else `undefined`. */
function scriptOf(body: unknown): string | undefined {
  return typeof body === 'string' ? body : isArgv(body) ? body.join('\n') : undefined;
}

/** The variable `${name}` refers to in a template's script: the parameter's, else the input's. */
function variableOf(name: string, parameters: TemplateJson['parameters']): string {
  return Object.hasOwn(parameters, name) ? parameterEnvName(name) : inputEnvName(name);
}

/**
 * `script` (flags resolved) with each placeholder rewritten to its variable.
 * @throws PrepareError when a placement is unsafe, or a value cannot be passed where it is used.
 */
function scriptWithReferences(script: string, values: ExpansionValues, env: ValueEnv): string {
  let placements: Placement[];
  try {
    placements = placePlaceholders(script, (name) => values.has(name));
  } catch (err) {
    if (!(err instanceof ShellScanError)) throw err;
    throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNSAFE', `Parameter 'body': the script cannot be read: ${err.message}`, { subject: 'body', cause: err });
  }
  const refusal = firstRefusal(placements);
  if (refusal) {
    const variable = env.variables.get(refusal.site.name)!;
    throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNSAFE', `Parameter 'body': ${refusalMessage(refusal, variable)}`, { subject: refusal.site.name });
  }
  for (const { site, verdict } of placements) {
    const variable = env.variables.get(site.name)!;
    const leftOut = env.leftOut.get(variable);
    if (leftOut !== undefined) {
      throw new PrepareError(
        'UFDL_ERR_AGENT_PARAM_BAD',
        `The value of '${site.name}' cannot be passed to the script (${leftOut}); read it from the file $UFDL_JOB_JSON instead`,
        { subject: site.name },
      );
    }
    if (verdict === 'integer' && !isArithmeticSafe(stringifyValue(values.get(site.name)))) {
      throw new PrepareError(
        'UFDL_ERR_AGENT_PARAM_BAD',
        `\${${site.name}} on line ${site.line} is in an arithmetic expression, so its value must be an integer, got ${JSON.stringify(stringifyValue(values.get(site.name)).slice(0, 80))}`,
        { subject: site.name },
      );
    }
  }
  return rewriteScript(script, placements, (name) => env.variables.get(name)!);
}
