/**
 * `ufdl_agent.Docker`: run the `image` parameter in a container, the optional `body` parameter as the
 * container's argv (expanded like `Command`'s, with the same checks). Only offered when a Docker
 * engine answers.
 *
 * Unlike the reference worker's containers (no name, no labels, only the CLI signalled on cancel;
 * docs/ARCHITECTURE.md, "Decisions"), the container is findable, stoppable and removed:
 * - a deterministic name `ufdl-job-<job pk>-<attempt>-<agent>` and labels (`ufdl.job`, `ufdl.attempt`,
 *   `ufdl.node`, `ufdl.agent`, `ufdl.server`), so a restarted agent finds it again, and removes the
 *   ones no journal entry owns;
 * - the child (under the wrapper, like every job) pulls the image by policy and then runs `docker run`
 *   attached (`docker-scripts.ts`), so the pull and the container's output are the job's log, and the
 *   container's exit status is the child's;
 * - cancel, time limit and drain `docker stop` the container with the grace (then `docker kill`), and
 *   once the child has ended the container is inspected (out of memory? could it start at all?) and
 *   removed (`docker-container.ts`);
 * - `--init`, so the job's PID 1 forwards SIGTERM and reaps zombies; `--user` the agent's uid:gid, so
 *   the files it leaves in the job directory are the agent's to upload and delete;
 * - the job directory is mounted at the same path and is the working directory and `HOME`, so every
 *   contract path is valid inside; the contract variables and the job's values (`UFDL_PARAM_<name>`,
 *   `UFDL_INPUT_<name>`) are passed by name (`-e NAME`), their values taken from the CLI's
 *   environment, never written on a command line;
 * - `--gpus device=<id>` for a GPU slot (inside, the one visible GPU is device 0, so the container's
 *   `CUDA_VISIBLE_DEVICES` is `0`, or empty on a CPU slot); `--memory` (with no swap beyond it) and
 *   `--cpus` from the `docker_memory` and `docker_cpus` parameters; `--network` from the agent's
 *   configuration.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childEnv, contractEnv, valueEnv } from '../child/env.js';
import type { JobDir } from '../child/job-dir.js';
import type { ChildSpec } from '../child/running-child.js';
import { runProgram } from '../run-program.js';
import { expandArgv, expandString, flagTruth, type ExpansionValues } from './template-params.js';
import { argvCodeProblem, argvParameter, checkTemplate, isArgv, resolveJob } from './common.js';
import { containerWork } from './docker-container.js';
import { containersLabelled, inspectContainer, LABEL, removeContainer, type DockerCli } from './docker-engine.js';
import { DOCKER_FOLLOW_SCRIPT, DOCKER_RUN_SCRIPT, LAUNCHER_NAME } from './docker-scripts.js';
import { dockerLimitFlags } from './docker-limits.js';
import { PrepareError, refusal, refusalFrom, type TemplateRefusal } from './errors.js';
import { SCRIPT_SHELL } from './shell.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

export const DOCKER_EXECUTOR_CLASS = 'ufdl_agent.Docker';

/** When the image is pulled before `docker run`: every time, only when it is absent, or never. */
export type PullPolicy = 'never' | 'missing' | 'always';
export const PULL_POLICIES: readonly PullPolicy[] = ['never', 'missing', 'always'];

/** Options of {@link createDockerExecutor}. */
export interface DockerOptions {
  /**
   * The Docker CLI.
   * @default 'docker'
   */
  binary?: string;
  /**
   * `--user` for every container.
   * @default the agent's own `uid:gid`
   */
  user?: string;
  /**
   * `--network` for every container: `none`, `bridge`, `host`, or a network's name.
   * @default 'bridge'
   */
  network?: string;
  /**
   * The image pull policy.
   * @default 'missing'
   */
  pull?: PullPolicy;
  /**
   * Who runs the containers, for the `ufdl.agent` label: an agent removes at start-up only the
   * containers it labelled.
   * @default 'ufdl-agent'
   */
  agentId?: string;
  /** Extra `docker run` options placed before the image (e.g. `--shm-size 8g`). */
  extraArgs?: readonly string[];
}

/**
 * The `ufdl.agent` label of the containers of the agent whose work directory is `workDir` on this
 * host: one agent's start-up sweep never touches another's containers on a shared engine. Taken once,
 * when the agent's journal is new, and kept by the journal ever after (`Journal.identity`): an agent
 * whose container is re-created gets a new hostname, and must still find the containers it started.
 */
export function dockerAgentId(workDir: string): string {
  return `${hostname()}:${workDir}`;
}

/**
 * The `ufdl.agent` label that an earlier version of this agent gave the containers of `jobs` (the
 * journal's unfinished attempts on the server of `serverUrls`), if any is still there. Before the
 * journal kept the identity it was the host's name and the work directory at each start, so an upgrade
 * that re-created the agent's own container (a new hostname) would lose them. A container is looked
 * for under every address of the server (the first the one in use, as `server.url` lists them): it
 * keeps the `ufdl.server` label of the address it was started under, which is not the first once the
 * operator reordered them. Only a label of this work directory is taken; undefined when there is none
 * or the engine cannot be asked.
 */
export async function earlierAgentId(
  jobs: readonly { jobPk: number; attempt: number }[],
  serverUrls: readonly string[],
  workDir: string,
  binary = 'docker',
): Promise<string | undefined> {
  const cli: DockerCli = { binary };
  try {
    for (const job of jobs) {
      for (const serverUrl of serverUrls) {
        for (const name of await containersLabelled(cli, { [LABEL.job]: String(job.jobPk), [LABEL.attempt]: String(job.attempt), [LABEL.server]: serverUrl })) {
          const agent = (await inspectContainer(cli, name))?.labels[LABEL.agent];
          if (agent?.endsWith(`:${workDir}`)) return agent;
        }
      }
    }
  } catch {
    // No engine, or it does not answer: nothing to adopt.
  }
  return undefined;
}

/**
 * The container name of a job's attempt of server `serverUrl` by the agent `agentId`: deterministic,
 * so it can be found after a restart. Container names are global on the engine, whereas job pks are
 * per server and attempts per journal: two agents on one engine (`ufdl-agent@` instances) run a job
 * 1, attempt 1 each, and so does one agent whose journal keeps an unfinished job of the server it
 * served before. The digest of agent and server keeps their names apart; with the same name, the
 * second `docker run` failed and its clean-up then removed the other's container.
 */
export function dockerContainerName(agentId: string, serverUrl: string, jobPk: number, attempt: number): string {
  const owner = createHash('sha256').update(`${agentId}\n${serverUrl}`).digest('hex').slice(0, 8);
  return `ufdl-job-${jobPk}-${attempt}-${owner}`;
}

/**
 * The names earlier versions gave a job's attempt, newest first (kept to follow such a container
 * after an upgrade): by the agent alone, then by neither agent nor server.
 */
function earlierContainerNames(agentId: string, jobPk: number, attempt: number): string[] {
  const agent = createHash('sha256').update(agentId).digest('hex').slice(0, 8);
  return [`ufdl-job-${jobPk}-${attempt}-${agent}`, `ufdl-job-${jobPk}-${attempt}`];
}

/** What a Docker image reference may look like (`[registry[:port]/]path[:tag][@digest]`); never an option. */
const IMAGE_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$/;

/** The `ufdl_agent.Docker` executor with the given options. */
export function createDockerExecutor(options: DockerOptions = {}): DockerExecutor {
  const cli: DockerCli = { binary: options.binary ?? 'docker' };
  const agentId = options.agentId ?? 'ufdl-agent';
  return {
    executorClass: DOCKER_EXECUTOR_CLASS,

    check(template: TemplateJson): TemplateRefusal | undefined {
      const problem = checkTemplate(template, { image: 'string', body: 'optional-argv' }) ?? limitsProblem(template);
      if (problem !== undefined) return problem;
      const body = template.parameters['body']?.default;
      if (!isArgv(body)) return undefined;
      const names = { parameters: template.parameters, inputs: (template.inputs ?? []).map((input) => input.name) };
      const unsafe = argvCodeProblem(body, () => true, names) ?? argvCodeProblem(body, () => false, names);
      return unsafe === undefined ? undefined : refusal('UFDL_ERR_AGENT_PARAM_UNSAFE', `template '${template.name}': ${unsafe}`);
    },

    prepare(job: JobJson, template: TemplateJson, ctx: ExecutorContext): PreparedJob {
      const { parameters, inputs, settings, values } = resolveJob(job, template, ctx, true);
      const image = imageOf(parameters, values);
      const body = parameters['body'] === undefined || parameters['body'] === null ? [] : argvParameter(parameters, 'body');
      const unsafe = argvCodeProblem(body, flagTruth(values), { parameters, inputs: Object.keys(inputs) });
      if (unsafe !== undefined) throw new PrepareError('UFDL_ERR_AGENT_PARAM_UNSAFE', `Parameter 'body': ${unsafe}`, { subject: 'body' });
      const contract = contractEnv(ctx.dir, ctx.gpu === null ? null : '0');
      const values_ = valueEnv(parameters, inputs).env;
      const name = dockerContainerName(agentId, ctx.serverUrl, job.pk, ctx.attempt);
      const root = ctx.dir.root;
      const labels: Record<string, string> = {
        [LABEL.job]: String(job.pk),
        [LABEL.attempt]: String(ctx.attempt),
        [LABEL.node]: String(ctx.nodePk),
        [LABEL.agent]: agentId,
        [LABEL.server]: ctx.serverUrl,
      };
      const run = [
        'run',
        '--name',
        name,
        ...Object.entries(labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]),
        '--init',
        '--pull',
        'never', // the child pulled it already, by policy
        '--network',
        options.network ?? 'bridge',
        '--user',
        options.user ?? agentUser(),
        ...(ctx.gpu === null ? [] : ['--gpus', `device=${ctx.gpu}`]),
        ...dockerLimitFlags(parameters),
        '--volume',
        `${root}:${root}`,
        '--workdir',
        root,
        '--env',
        `HOME=${root}`,
        ...[...Object.keys(contract), ...Object.keys(values_)].flatMap((key) => ['--env', key]),
        ...(options.extraArgs ?? []),
        image,
        ...expandArgv(body, values),
      ];
      const argv = [SCRIPT_SHELL, '-c', DOCKER_RUN_SCRIPT, LAUNCHER_NAME, cli.binary, options.pull ?? 'missing', image, ...run];
      const outside = containerWork({ cli, name, image, gpu: ctx.gpu, dir: ctx.dir });
      return {
        spec: { argv, env: childEnv(contract, values_), cwd: root, dir: ctx.dir, outside },
        settings,
        parameters,
      };
    },

    async follow(serverUrls: readonly string[], jobPk: number, attempt: number, dir: JobDir): Promise<ChildSpec | undefined> {
      // A container started by a version that named it otherwise (without the server, or without
      // the agent too) is followed as well: after an upgrade that re-attaches under running jobs,
      // not finding it would requeue a job whose container still runs. Only this agent's container
      // of this server's job: under the older names, another server's job of the same pk and attempt
      // had the same name. Every address of the server is its own: its entries journalled under
      // another one were taken over under the first (`aliases.ts`), their containers were not.
      const named = serverUrls.map((url) => dockerContainerName(agentId, url, jobPk, attempt));
      let name: string | undefined;
      let state: Awaited<ReturnType<typeof inspectContainer>>;
      for (const candidate of [...named, ...earlierContainerNames(agentId, jobPk, attempt)]) {
        state = await inspectContainer(cli, candidate);
        if (state === undefined) continue;
        const server = state.labels[LABEL.server];
        if (state.labels[LABEL.agent] !== agentId || (server !== undefined && !serverUrls.includes(server))) continue;
        name = candidate;
        break;
      }
      if (state === undefined || name === undefined) return undefined;
      if (state.status === 'created') {
        // Its `docker run` client died (with the agent) between creating and starting it: the job
        // never ran, and `docker wait` answers 0 for a container that never started, which would
        // report success. Nothing to follow: remove it, and the job counts as gone (requeued).
        await removeContainer(cli, name);
        return undefined;
      }
      const since = await stat(dir.consolePath).then((s) => s.mtime.toISOString(), () => state.startedAt);
      return {
        argv: [SCRIPT_SHELL, '-c', DOCKER_FOLLOW_SCRIPT, LAUNCHER_NAME, cli.binary, name, since],
        env: childEnv(contractEnv(dir, null)),
        cwd: dir.root,
        dir,
        outside: containerWork({ cli, name, image: state.image, gpu: null, dir }),
      };
    },

    async sweep(serverUrls: readonly string[], owned: (jobPk: number, attempt: number) => boolean): Promise<SweepResult> {
      const result: SweepResult = { removed: [], failed: [] };
      // Every address of the server: after its addresses were reordered, the journal keeps its entries
      // under the first, and containers started before keep the label of the one they were started under.
      const names = new Set<string>();
      for (const serverUrl of serverUrls) for (const name of await containersLabelled(cli, { [LABEL.agent]: agentId, [LABEL.server]: serverUrl })) names.add(name);
      for (const name of names) {
        const state = await inspectContainer(cli, name);
        if (state === undefined) continue;
        if (owned(Number(state.labels[LABEL.job]), Number(state.labels[LABEL.attempt]))) continue;
        const left = await removeContainer(cli, name);
        if (left === undefined) result.removed.push(name);
        else result.failed.push({ name, reason: left });
      }
      return result;
    },
  };
}

/** What {@link DockerExecutor.sweep} did. */
export interface SweepResult {
  removed: string[];
  failed: { name: string; reason: string }[];
}

/** The Docker executor: an {@link Executor} that also finds its containers again. */
export interface DockerExecutor extends Executor {
  /**
   * After an agent restart that found a job's child gone: when the attempt's container is still
   * there (running, or ended meanwhile), a child that follows it to its end and exits with its
   * status; `undefined` when there is no such container, or only one that never started (then removed).
   * `serverUrls`: every address of the job's server, the first the one in use (as `server.url` lists them).
   */
  follow(serverUrls: readonly string[], jobPk: number, attempt: number, dir: JobDir): Promise<ChildSpec | undefined>;
  /** Remove this agent's containers (labelled with any of the server's `serverUrls`) that `owned` does not claim; at start-up. */
  sweep(serverUrls: readonly string[], owned: (jobPk: number, attempt: number) => boolean): Promise<SweepResult>;
}

/** The executor with default options. */
export const dockerExecutor: DockerExecutor = createDockerExecutor();

function imageOf(parameters: Readonly<Record<string, unknown>>, values: ExpansionValues): string {
  const raw = parameters['image'];
  const image = typeof raw === 'string' ? expandString(raw, values).trim() : '';
  if (image === '') {
    throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', "Parameter 'image' must name a Docker image", { subject: 'image' });
  }
  if (!IMAGE_REFERENCE.test(image)) {
    throw new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', `Parameter 'image': ${JSON.stringify(image.slice(0, 100))} is not a Docker image reference`, {
      subject: 'image',
    });
  }
  return image;
}

/** Why the defaults of the limit parameters cannot be used, or `undefined`. */
function limitsProblem(template: TemplateJson): TemplateRefusal | undefined {
  const defaults = Object.fromEntries(
    Object.entries(template.parameters).filter(([, p]) => Object.hasOwn(p, 'default')).map(([name, p]) => [name, p.default]),
  );
  try {
    dockerLimitFlags(defaults);
    return undefined;
  } catch (err) {
    return refusalFrom(err, `template '${template.name}': `);
  }
}

/** The agent's own `uid:gid`. */
function agentUser(): string {
  return `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
}

/** Whether a Docker engine answers (`docker version` succeeds), with the reason when it does not. */
export async function isDockerAvailable(
  binary = 'docker',
  timeoutMs = 10_000,
): Promise<{ available: true; serverVersion: string } | { available: false; reason: string }> {
  try {
    const { stdout } = await runProgram(binary, ['version', '--format', '{{.Server.Version}}'], { timeoutMs });
    return { available: true, serverVersion: stdout.trim() };
  } catch (err) {
    return { available: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
