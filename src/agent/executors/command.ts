/**
 * `ufdl_agent.Command`: the `body` parameter is an argv (`Array<str>`), run directly with no shell, so
 * no value of the job can be read as shell syntax. Each entry is expanded; entries that become empty
 * are dropped. `${UFDL_OUTPUT_DIR}` and the other contract variables are expandable here, since there
 * is no shell to read them from the environment.
 *
 * ```json
 * "body": {"types": ["Array<str>"], "const": true,
 *          "default": ["python3", "train.py", "--epochs", "${epochs}", "${+verbose:--verbose}",
 *                      "--out", "${UFDL_OUTPUT_DIR}/model.bin"]}
 * ```
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv } from '../child/env.js';
import { expandArgv } from '../template-params.js';
import { argvParameter, checkTemplate, resolveJob } from './common.js';
import { PrepareError } from './errors.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const COMMAND_EXECUTOR_CLASS = 'ufdl_agent.Command';

/** The `ufdl_agent.Command` executor. */
export const commandExecutor: Executor = {
  executorClass: COMMAND_EXECUTOR_CLASS,

  check(template: TemplateJson): string | undefined {
    return checkTemplate(template, { body: 'argv' });
  },

  prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
    const { parameters, settings, values } = resolveJob(job, template, ctx, true);
    const argv = expandArgv(argvParameter(parameters, 'body'), values);
    if (argv.length === 0) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'body' expands to an empty command", { subject: 'body' });
    }
    return {
      spec: { argv, env: childEnv(contractEnv(ctx.dir, ctx.gpu)), cwd: ctx.dir.root, dir: ctx.dir },
      settings,
      parameters,
    };
  },
};
