/**
 * `ufdl_agent.Shell`: the `body` parameter is a script (a `str`, or an array of lines joined with
 * newlines) run by `/bin/sh -c`.
 *
 * Every `${name}` in the script becomes one single-quoted shell word, so a job's value can never inject
 * shell syntax: write `echo ${name}`, not `echo "${name}"` (which would print the quotes). Text kept
 * by `${+flag:text}` is the template's own and is inserted as it is. Other `${…}` (`${HOME}`,
 * `${UFDL_OUTPUT_DIR}`) are left for the shell, which has the contract variables in its environment.
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv } from '../child/env.js';
import { expandString, shellQuote } from '../template-params.js';
import { checkTemplate, isArgv, resolveJob } from './common.js';
import { PrepareError } from './errors.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const SHELL_EXECUTOR_CLASS = 'ufdl_agent.Shell';

/** The shell that runs scripts; POSIX `sh`, as the wrapper uses. */
export const SCRIPT_SHELL = '/bin/sh';

/** The `ufdl_agent.Shell` executor. */
export const shellExecutor: Executor = {
  executorClass: SHELL_EXECUTOR_CLASS,

  check(template: TemplateJson): string | undefined {
    return checkTemplate(template, { body: 'script' });
  },

  prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
    const { parameters, settings, values } = resolveJob(job, template, ctx, false);
    const body = parameters['body'];
    const script = typeof body === 'string' ? body : isArgv(body) ? body.join('\n') : undefined;
    if (script === undefined) {
      throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'body' must be a script (str, or Array<str> of lines)", {
        subject: 'body',
      });
    }
    // `$0` names the job in `ps` and in the shell's own error messages.
    const argv = [SCRIPT_SHELL, '-c', expandString(script, values, { quote: shellQuote }), `ufdl-job-${job.pk}`];
    return {
      spec: { argv, env: childEnv(contractEnv(ctx.dir, ctx.gpu)), cwd: ctx.dir.root, dir: ctx.dir },
      settings,
      parameters,
    };
  },
};
