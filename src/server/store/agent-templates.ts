/**
 * Import checks for templates of this project's executors (`ufdl_agent.*`): what would make every
 * agent skip the template's jobs, or run a job's value as code, is refused at import with a 400 that
 * says why, rather than leaving jobs that wait forever or a script a hostile value could take over.
 *
 * - every parameter and input gets an environment variable of its own (`UFDL_PARAM_<name>`, …);
 * - the output names the `outputs` parameter declares are valid output names;
 * - a `ufdl_agent.Shell` script places each `${name}` where a value stays data, and a
 *   `ufdl_agent.Command` argv never hands a value to a program as code.
 */
import { UfdlError } from '../../protocol/errors.js';
import { outputNameProblem, outputsMap } from '../../protocol/output-names.js';
import { resolveFlags } from '../../protocol/placeholders.js';
import { argvProblem, shellScriptProblem } from '../../protocol/shell/body-checks.js';
import { inputEnvName, parameterEnvName, valueEnvClash } from '../../protocol/value-env.js';
import type { TemplateParameter } from '../../protocol/wire.js';

const AGENT_EXECUTOR_PREFIX = 'ufdl_agent.';

/** Check a template whose executor is one of ours; throws a 400 {@link UfdlError} naming the problem. */
export function checkAgentTemplate(executorClass: string, parameters: Readonly<Record<string, TemplateParameter>>, inputs: readonly string[]): void {
  if (!executorClass.startsWith(AGENT_EXECUTOR_PREFIX)) return;
  const clash = valueEnvClash(Object.keys(parameters), inputs);
  if (clash !== undefined) throw bad(`specific.parameters: ${clash}`);
  checkDeclaredOutputs(parameters['outputs']);
  const body = parameters['body'];
  if (body === undefined || !Object.hasOwn(body, 'default')) return;
  const variable = (name: string): string => (Object.hasOwn(parameters, name) ? parameterEnvName(name) : inputEnvName(name));
  const known = (name: string): boolean => Object.hasOwn(parameters, name) || inputs.includes(name);
  let unsafe: string | undefined;
  if (executorClass === 'ufdl_agent.Shell') {
    const script = typeof body.default === 'string' ? body.default : isLines(body.default) ? body.default.join('\n') : undefined;
    if (script !== undefined) unsafe = shellScriptProblem(script, { parameters, inputs, variable });
  } else if (isLines(body.default)) {
    const argv = body.default;
    for (const flagsOn of [true, false]) {
      const entries = argv.map((entry) => resolveFlags(entry, () => flagsOn)).filter((entry) => entry !== '');
      unsafe ??= argvProblem(entries, known, variable);
    }
  }
  if (unsafe !== undefined) throw new UfdlError('UFDL_ERR_TEMPLATE_UNSAFE', `Unsafe job template: specific.parameters.body: ${unsafe}`);
}

/** The `outputs` parameter maps file names to types; a name no upload can have would fail every job. */
function checkDeclaredOutputs(parameter: TemplateParameter | undefined): void {
  if (parameter === undefined || !Object.hasOwn(parameter, 'default')) return;
  // Not a map of outputs: the agent says so when it reads it.
  const declared = outputsMap(parameter.default);
  if (declared === undefined) return;
  for (const name of Object.keys(declared)) {
    const problem = outputNameProblem(name);
    if (problem !== undefined) {
      throw bad(`specific.parameters.outputs.default: the output name ${JSON.stringify(name)} ${problem}, so no job of this template could upload it`);
    }
  }
}

function isLines(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((line) => typeof line === 'string');
}

function bad(detail: string): UfdlError {
  return new UfdlError('UFDL_ERR_TEMPLATE_BAD', `Bad job template: ${detail}`);
}
