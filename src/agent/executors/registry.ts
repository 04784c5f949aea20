/**
 * The executor allow-list (docs/ARCHITECTURE.md, "Executors"): which `executor_class` values this node runs. A template naming
 * anything else is skipped, with a reason the poll loop can log once per template.
 */
import type { TemplateJson } from '../../protocol/wire.js';
import type { JobDir } from '../child/job-dir.js';
import type { ChildSpec } from '../child/running-child.js';
import { commandExecutor } from './command.js';
import { createDockerExecutor, DOCKER_EXECUTOR_CLASS, isDockerAvailable, type DockerExecutor, type DockerOptions, type SweepResult } from './docker.js';
import { refusal, type TemplateRefusal } from './errors.js';
import { shellExecutor } from './shell.js';
import type { Executor } from './types.js';

/** Looks up executors by class and says whether a template can run here. */
export class ExecutorRegistry {
  readonly #executors = new Map<string, Executor>();
  readonly #unavailable = new Map<string, string>();
  readonly #checked = new WeakMap<TemplateJson, TemplateRefusal | undefined>();

  /**
   * @param executors the executors this node runs
   * @param unavailable executor classes this node knows but cannot run now, with the reason
   */
  constructor(executors: readonly Executor[], unavailable: Readonly<Record<string, string>> = {}) {
    for (const executor of executors) this.#executors.set(executor.executorClass, executor);
    for (const [cls, reason] of Object.entries(unavailable)) this.#unavailable.set(cls, reason);
  }

  /** The executor for `executorClass`, if this node runs it. */
  executorFor(executorClass: string): Executor | undefined {
    return this.#executors.get(executorClass);
  }

  /**
   * Why this node cannot run jobs of `template` (the sentence and its agent code), or `undefined` when
   * it can. The verdict is kept per template object (the template cache hands out one per pk), since
   * checking a script reads it whole.
   */
  canRun(template: TemplateJson): TemplateRefusal | undefined {
    const executor = this.#executors.get(template.executor_class);
    if (executor) {
      if (!this.#checked.has(template)) this.#checked.set(template, executor.check(template));
      return this.#checked.get(template);
    }
    const reason = this.#unavailable.get(template.executor_class);
    if (reason) return refusal('UFDL_ERR_AGENT_EXECUTOR_UNKNOWN', `executor ${template.executor_class} is not available on this node: ${reason}`);
    return refusal(
      'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN',
      `executor class '${template.executor_class}' is not one this node runs (${[...this.#executors.keys()].join(', ')})`,
    );
  }

  /**
   * After an agent restart that found a job's child gone: a child that follows the job's work still
   * outside it (its container) to its end, or `undefined` when there is none. `serverUrls`: every
   * address of the job's server, the first the one in use.
   */
  async followOutside(serverUrls: readonly string[], jobPk: number, attempt: number, dir: JobDir): Promise<ChildSpec | undefined> {
    return this.#docker()?.follow(serverUrls, jobPk, attempt, dir);
  }

  /** At start-up: remove the work outside any child (containers) that no unfinished job owns. */
  async sweepOutside(serverUrls: readonly string[], owned: (jobPk: number, attempt: number) => boolean): Promise<SweepResult> {
    return (await this.#docker()?.sweep(serverUrls, owned)) ?? { removed: [], failed: [] };
  }

  #docker(): DockerExecutor | undefined {
    const docker = this.#executors.get(DOCKER_EXECUTOR_CLASS) as Partial<DockerExecutor> | undefined;
    return docker?.follow && docker.sweep ? (docker as DockerExecutor) : undefined;
  }

  /** What the node runs, and what it knows but cannot run, for `status` and the start-up log. */
  describe(): { available: string[]; unavailable: Record<string, string> } {
    return { available: [...this.#executors.keys()], unavailable: Object.fromEntries(this.#unavailable) };
  }
}

/** Options of {@link createExecutorRegistry}. */
export interface RegistryOptions {
  /**
   * Offer `ufdl_agent.Docker`: `'auto'` when `docker version` succeeds, `true` always, `false` never.
   * @default 'auto'
   */
  docker?: boolean | 'auto';
  dockerOptions?: DockerOptions;
}

/** The built-in executors: `Command` and `Shell` always, `Docker` when an engine answers. */
export async function createExecutorRegistry(options: RegistryOptions = {}): Promise<ExecutorRegistry> {
  const executors: Executor[] = [commandExecutor, shellExecutor];
  const unavailable: Record<string, string> = {};
  const docker = options.docker ?? 'auto';
  if (docker === true) {
    executors.push(createDockerExecutor(options.dockerOptions));
  } else if (docker === 'auto') {
    const probe = await isDockerAvailable(options.dockerOptions?.binary);
    if (probe.available) executors.push(createDockerExecutor(options.dockerOptions));
    else unavailable[DOCKER_EXECUTOR_CLASS] = probe.reason;
  } else {
    unavailable[DOCKER_EXECUTOR_CLASS] = 'disabled by configuration';
  }
  return new ExecutorRegistry(executors, unavailable);
}
