/**
 * What the agent asks of the Docker engine itself, through the docker CLI (`run-program.ts`): a
 * container's state, stopping it (`docker stop` with the grace, then `docker kill`), removing it and
 * checking that it is gone, and finding the containers of this agent by their labels.
 */
import { isProgramError, runProgram } from '../run-program.js';

/** Labels every job container carries (docs/ARCHITECTURE.md, "Executors"). */
export const LABEL = {
  job: 'ufdl.job',
  attempt: 'ufdl.attempt',
  node: 'ufdl.node',
  agent: 'ufdl.agent',
  server: 'ufdl.server',
} as const;

/** How long a docker CLI call may take, beyond any grace it is asked to wait. */
const CLI_TIMEOUT_MS = 60_000;

/** A container as `docker inspect` describes it. */
export interface ContainerState {
  name: string;
  /** `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`. */
  status: string;
  running: boolean;
  exitCode: number;
  /** The kernel's OOM killer ended it (its memory limit was reached). */
  oomKilled: boolean;
  /** What the engine said went wrong starting it, if anything. */
  error: string;
  /** When it started and ended (RFC 3339; the zero time when it has not). */
  startedAt: string;
  finishedAt: string;
  labels: Record<string, string>;
  /** The image it was created from, as named. */
  image: string;
  /** The memory limit in bytes (0: none). */
  memoryBytes: number;
}

/** The docker CLI to use. */
export interface DockerCli {
  binary: string;
}

/** Run the docker CLI; throws a `ProgramError` naming the command. */
function docker(cli: DockerCli, args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  return runProgram(cli.binary, args, { timeoutMs }).then((r) => r.stdout);
}

/** The container's state, or `undefined` when there is no such container. */
export async function inspectContainer(cli: DockerCli, name: string): Promise<ContainerState | undefined> {
  let text: string;
  try {
    text = await docker(cli, ['container', 'inspect', '--format', '{{json .}}', name]);
  } catch (err) {
    if (isProgramError(err, 'exit') && /no such (container|object)/i.test(err.stderr)) return undefined;
    throw err;
  }
  const raw = JSON.parse(text) as {
    Name?: string;
    State?: { Status?: string; Running?: boolean; ExitCode?: number; OOMKilled?: boolean; Error?: string; StartedAt?: string; FinishedAt?: string };
    Config?: { Labels?: Record<string, string> | null; Image?: string };
    HostConfig?: { Memory?: number };
  };
  const state = raw.State ?? {};
  return {
    name: (raw.Name ?? name).replace(/^\//, ''),
    status: state.Status ?? 'unknown',
    running: state.Running === true,
    exitCode: state.ExitCode ?? -1,
    oomKilled: state.OOMKilled === true,
    error: state.Error ?? '',
    startedAt: state.StartedAt ?? '',
    finishedAt: state.FinishedAt ?? '',
    labels: raw.Config?.Labels ?? {},
    image: raw.Config?.Image ?? '',
    memoryBytes: raw.HostConfig?.Memory ?? 0,
  };
}

/**
 * Stop a container: `docker stop` (SIGTERM to its init, SIGKILL after `graceS`), then `docker kill`
 * should it still run. Never throws for a container that is gone already.
 */
export async function stopContainer(cli: DockerCli, name: string, graceS: number): Promise<void> {
  try {
    await docker(cli, ['container', 'stop', '--time', String(graceS), name], CLI_TIMEOUT_MS + graceS * 1000);
  } catch (err) {
    if (isProgramError(err, 'exit') && /no such container/i.test(err.stderr)) return;
    // The engine did not stop it in time (or the CLI failed): force it.
    await docker(cli, ['container', 'kill', name]).catch(() => {});
  }
  const state = await inspectContainer(cli, name).catch(() => undefined);
  if (state?.running) await docker(cli, ['container', 'kill', name]).catch(() => {});
}

/**
 * Remove a container (forcibly: it is killed if it still runs) and check that it is gone. Returns
 * why it is not, or `undefined` once it is.
 */
export async function removeContainer(cli: DockerCli, name: string): Promise<string | undefined> {
  try {
    await docker(cli, ['container', 'rm', '--force', '--volumes', name]);
  } catch (err) {
    if (!(isProgramError(err, 'exit') && /no such container/i.test(err.stderr))) {
      return err instanceof Error ? err.message : String(err);
    }
  }
  const left = await inspectContainer(cli, name).catch((err: unknown) => ({ status: `unknown (${String(err)})` }) as ContainerState);
  return left === undefined ? undefined : `container ${name} is still there (${left.status}) after 'docker rm --force'`;
}

/** The names of the containers (running or not) whose labels match every `key=value` of `labels`. */
export async function containersLabelled(cli: DockerCli, labels: Readonly<Record<string, string>>): Promise<string[]> {
  const filters = Object.entries(labels).flatMap(([key, value]) => ['--filter', `label=${key}=${value}`]);
  const out = await docker(cli, ['container', 'ls', '--all', '--no-trunc', '--format', '{{.Names}}', ...filters]);
  return out.split('\n').map((line) => line.trim()).filter((line) => line !== '');
}

/** Whether an image is present on this engine. */
export async function hasImage(cli: DockerCli, image: string): Promise<boolean> {
  try {
    await docker(cli, ['image', 'inspect', '--format', '{{.Id}}', image]);
    return true;
  } catch (err) {
    if (isProgramError(err, 'exit')) return false;
    throw err;
  }
}
