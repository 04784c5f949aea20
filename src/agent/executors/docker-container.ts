/**
 * A Docker job's container as work outside its process group (`OutsideWork`): stopped with
 * `docker stop` and the grace (then `docker kill`), and settled once the job's child has ended — how
 * it ended in words where the exit status does not say (out of memory, a missing image, no GPU
 * driver), then removed, and checked to be gone.
 */
import { formatBytes } from '../../protocol/dashboard.js';
import type { JobDir } from '../child/job-dir.js';
import type { OutsideEnd, OutsideWork } from '../child/running-child.js';
import { tailLines } from '../child/tail.js';
import type { ExitResult } from '../child/wrapper.js';
import { inspectContainer, removeContainer, stopContainer, type ContainerState, type DockerCli } from './docker-engine.js';
import { DOCKER_FAILURE_STATUS, LAUNCHER_PREFIX } from './docker-scripts.js';

/** A job's container. */
export interface ContainerRef {
  cli: DockerCli;
  name: string;
  /** The image, to name it when it cannot be found. */
  image: string | undefined;
  /** The slot's GPU (`--gpus device=…`), or null. */
  gpu: string | null;
  dir: Pick<JobDir, 'consolePath'>;
}

/** Lines of the log searched for the engine's own words when `docker run` could not run the container. */
const SEARCHED_LINES = 40;

/** The container of a Docker job, as work outside its group. */
export function containerWork(ref: ContainerRef): OutsideWork {
  return {
    description: `container ${ref.name}`,
    stop: (graceMs) => stopContainer(ref.cli, ref.name, Math.max(0, Math.ceil(graceMs / 1000))).catch(() => {}),
    // SIGKILL of the `docker run` client in the job's group leaves the container running.
    fenceKill: [ref.cli.binary, 'container', 'kill', ref.name],
    settle: (exit) => settleContainer(ref, exit),
  };
}

async function settleContainer(ref: ContainerRef, exit: ExitResult): Promise<OutsideEnd> {
  let state: ContainerState | undefined;
  try {
    state = await inspectContainer(ref.cli, ref.name);
  } catch {
    state = undefined; // the engine did not answer; the log may still say why
  }
  // A container still running here means the client ended without it (SIGKILLed): end it now.
  if (state?.running) await stopContainer(ref.cli, ref.name, 0).catch(() => {});
  const explanation = await explainEnd(ref, exit, state).catch(() => undefined);
  const leftOver = state === undefined ? undefined : await removeContainer(ref.cli, ref.name);
  return { explanation, leftOver };
}

/** Why the job failed, when the exit status alone does not say it; `undefined` otherwise. */
export async function explainEnd(ref: ContainerRef, exit: ExitResult, state: ContainerState | undefined): Promise<string | undefined> {
  if (state?.oomKilled) {
    const limit = state.memoryBytes > 0 ? ` of ${formatBytes(state.memoryBytes)}` : '';
    return `The container ran out of memory: it reached its memory limit${limit} and the kernel killed it (State.OOMKilled)`;
  }
  // `docker run` exits 125 when it could not run the container (or the launcher could not get the image).
  const couldNotRun = exit.code === DOCKER_FAILURE_STATUS || (state !== undefined && state.error !== '');
  if (!couldNotRun) return undefined;
  const said = [state?.error ?? '', ...(await tailLines(ref.dir.consolePath, SEARCHED_LINES).catch(() => [] as string[]))].filter(Boolean);
  const gpu = said.find((line) => /could not select device driver|nvidia-container-cli|unknown or invalid runtime name: nvidia/i.test(line));
  if (gpu !== undefined) {
    return `The container could not be given GPU ${ref.gpu ?? '(none)'}: the Docker engine has no working NVIDIA runtime (install nvidia-container-toolkit and restart dockerd): ${clean(gpu)}`;
  }
  const launcher = said.find((line) => line.startsWith(LAUNCHER_PREFIX) && !/ pulling image /.test(line));
  if (launcher !== undefined) return `Docker image ${ref.image ?? '(unknown)'}: ${clean(launcher.slice(LAUNCHER_PREFIX.length))}`;
  const noImage = said.find((line) => /no such image|pull access denied|manifest unknown|repository does not exist|not found/i.test(line));
  if (noImage !== undefined) return `Docker image ${ref.image ?? '(unknown)'} could not be found: ${clean(noImage)}`;
  const engine = said.findLast((line) => /^docker: |error response from daemon/i.test(line));
  return `docker run could not run the container (status ${DOCKER_FAILURE_STATUS})${engine === undefined ? '' : `: ${clean(engine)}`}`;
}

function clean(line: string): string {
  return line.replace(/^docker: /, '').trim().slice(0, 500);
}
