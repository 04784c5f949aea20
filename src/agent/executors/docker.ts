/**
 * `ufdl_agent.Docker`: run the `image` parameter with `docker run`, the optional `body` parameter as
 * the container's argv (expanded like `Command`'s). Only offered when a Docker engine answers.
 *
 * Unlike the reference worker's containers (no name, no labels, only the CLI signalled on cancel;
 * docs/ARCHITECTURE.md, "Decisions"), the container is findable and stoppable:
 * - a deterministic name `ufdl-job-<job pk>-<node pk>` and labels `ufdl.job`, `ufdl.node`,
 *   `ufdl.server`, so a restarted agent can find it and nothing is left nameless;
 * - `--init`, so the job's PID 1 forwards SIGTERM and reaps zombies;
 * - the group stop reaches the `docker` CLI, which forwards SIGTERM to the container (sig-proxy); if
 *   the CLI has to be SIGKILLed, `docker kill <name>` ends the container too (`ChildSpec.killArgv`);
 * - the job directory is mounted at the same path, so every contract path is valid inside, and the
 *   contract variables are passed by name (`-e NAME`), their values taken from the CLI's environment
 *   rather than written on a command line;
 * - `--gpus device=<id>` for a GPU slot; inside, the one visible GPU is device 0, so the container's
 *   `CUDA_VISIBLE_DEVICES` is `0` (or empty on a CPU slot).
 */
import { execFile } from 'node:child_process';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv } from '../child/env.js';
import { expandArgv, expandString } from './template-params.js';
import { argvParameter, checkTemplate, resolveJob } from './common.js';
import { PrepareError } from './errors.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const DOCKER_EXECUTOR_CLASS = 'ufdl_agent.Docker';

/** Options of {@link createDockerExecutor}. */
export interface DockerOptions {
  /**
   * The Docker CLI.
   * @default 'docker'
   */
  binary?: string;
  /** `--user` for every container (e.g. the agent's `uid:gid`, so it can delete the job's files). */
  user?: string;
  /** Extra `docker run` options placed before the image (e.g. `--shm-size 8g`). */
  extraArgs?: readonly string[];
}

/** The container name of a job on a node: deterministic, so it can be found after a restart. */
export function dockerContainerName(jobPk: number, nodePk: number): string {
  return `ufdl-job-${jobPk}-${nodePk}`;
}

/** The `ufdl_agent.Docker` executor with the given options. */
export function createDockerExecutor(options: DockerOptions = {}): Executor {
  const docker = options.binary ?? 'docker';
  return {
    executorClass: DOCKER_EXECUTOR_CLASS,

    check(template: TemplateJson): string | undefined {
      return checkTemplate(template, { image: 'string', body: 'optional-argv' });
    },

    prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
      const { parameters, settings, values } = resolveJob(job, template, ctx, true);
      const image = typeof parameters['image'] === 'string' ? expandString(parameters['image'], values).trim() : '';
      if (image === '') {
        throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'image' must name a Docker image", { subject: 'image' });
      }
      const body = parameters['body'] === undefined || parameters['body'] === null ? [] : argvParameter(parameters, 'body');
      const contract = contractEnv(ctx.dir, ctx.gpu === null ? null : '0');
      const name = dockerContainerName(job.pk, ctx.nodePk);
      const root = ctx.dir.root;
      const argv = [
        docker,
        'run',
        '--rm',
        '--name',
        name,
        '--label',
        `ufdl.job=${job.pk}`,
        '--label',
        `ufdl.node=${ctx.nodePk}`,
        '--label',
        `ufdl.server=${ctx.serverUrl}`,
        '--init',
        ...(ctx.gpu === null ? [] : ['--gpus', `device=${ctx.gpu}`]),
        ...(options.user === undefined ? [] : ['--user', options.user]),
        '-v',
        `${root}:${root}`,
        ...Object.keys(contract).flatMap((key) => ['-e', key]),
        ...(options.extraArgs ?? []),
        image,
        ...expandArgv(body, values),
      ];
      return {
        spec: { argv, env: childEnv(contract), cwd: root, dir: ctx.dir, killArgv: [docker, 'kill', name] },
        settings,
        parameters,
      };
    },
  };
}

/** The executor with default options. */
export const dockerExecutor: Executor = createDockerExecutor();

/** Whether a Docker engine answers (`docker version` succeeds), with the reason when it does not. */
export function isDockerAvailable(
  binary = 'docker',
  timeoutMs = 10_000,
): Promise<{ available: true; serverVersion: string } | { available: false; reason: string }> {
  return new Promise((resolve) => {
    execFile(binary, ['version', '--format', '{{.Server.Version}}'], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        const detail = (stderr.trim().split('\n').pop() ?? '') || err.message;
        resolve({ available: false, reason: `'${binary} version' failed: ${detail}` });
      } else {
        resolve({ available: true, serverVersion: stdout.trim() });
      }
    });
  });
}
