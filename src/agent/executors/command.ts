/**
 * `ufdl_agent.Command`: the `body` parameter is an argv (`Array<str>`), run directly with no shell, so
 * no value of the job can be read as shell syntax. Each entry is expanded; entries that become empty
 * are dropped. The values are in the environment too (`UFDL_PARAM_<name>`, `UFDL_INPUT_<name>`), as
 * for `Shell`. `${UFDL_OUTPUT_DIR}` and the other contract variables are expandable here, since there
 * is no shell to read them from the environment.
 *
 * ```json
 * "body": {"types": ["Array<str>"], "const": true,
 *          "default": ["python3", "train.py", "--epochs", "${epochs}", "${+verbose:--verbose}",
 *                      "--out", "${UFDL_OUTPUT_DIR}/model.bin"]}
 * ```
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv, valueEnv } from '../child/env.js';
import { expandArgv, flagTruth } from './template-params.js';
import { argvCodeProblem, argvParameter, checkTemplate, isArgv, resolveJob } from './common.js';
import { PrepareError, refusal, type TemplateRefusal } from './errors.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const COMMAND_EXECUTOR_CLASS = 'ufdl_agent.Command';

/** The `ufdl_agent.Command` executor. */
export const commandExecutor: Executor = {
  executorClass: COMMAND_EXECUTOR_CLASS,

  check(template: TemplateJson): TemplateRefusal | undefined {
    const problem = checkTemplate(template, { body: 'argv' });
    if (problem !== undefined) return problem;
    const body = template.parameters['body']?.default;
    if (!isArgv(body)) return undefined; // the job supplies the argv; checked when it runs
    const names = { parameters: template.parameters, inputs: (template.inputs ?? []).map((input) => input.name) };
    const unsafe = argvCodeProblem(body, () => true, names) ?? argvCodeProblem(body, () => false, names);
    return unsafe === undefined ? undefined : refusal('UFDL_ERR_AGENT_PARAM_UNSAFE', `template '${template.name}': ${unsafe}`);
  },

  prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
    const { parameters, inputs, settings, values } = resolveJob(job, template, ctx, true);
    const body = argvParameter(parameters, 'body');
    const unsafe = argvCodeProblem(body, flagTruth(values), { parameters, inputs: Object.keys(inputs) });
    if (unsafe !== undefined) throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNSAFE', `Parameter 'body': ${unsafe}`, { subject: 'body' });
    const argv = expandArgv(body, values);
    if (argv.length === 0) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'body' expands to an empty command", { subject: 'body' });
    }
    return {
      spec: { argv, env: childEnv(contractEnv(ctx.dir, ctx.gpu), valueEnv(parameters, inputs).env), cwd: ctx.dir.root, dir: ctx.dir },
      settings,
      parameters,
    };
  },
};
