/**
 * From a claimed job to a running child (docs/ARCHITECTURE.md, "One job"): `preparing` — create the job directory,
 * download the `JobOutput` inputs, let the executor prepare the command — then `starting` — tell the
 * server, write `UFDL_JOB_JSON`, spawn the child in its own process group — then `running` with the
 * child's pid and start time journalled. A job that cannot get that far is released so that another
 * node can run it (and the poll loop skips it a while when preparation failed).
 */
import { isClientError } from '../../client/errors.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { createJobDir, jobJsonContent, writeJobJson } from '../child/job-dir.js';
import type { RunningChild } from '../child/running-child.js';
import { spawnJob } from '../child/spawn.js';
import type { StopReason } from '../child/supervisor.js';
import { childStartIdentity } from '../child/identity.js';
import { PrepareError } from '../executors/errors.js';
import type { PreparedJob } from '../executors/types.js';
import { failPoint } from '../fail-points.js';
import { retryDelayMs, sleepUnlessAborted } from '../timing.js';
import { releaseUnstartedJob } from './claim.js';
import type { JobContext, RunOutcome } from './context.js';
import { finishWith, removeJobDirUnlessKept, stopDecision } from './finish.js';
import { downloadInputs } from './inputs.js';

export interface StartingJob {
  job: JobJson;
  template: TemplateJson;
  /** `CUDA_VISIBLE_DEVICES` of the job's slot, or null on a CPU slot. */
  gpu: string | null;
}

export interface PreparedStart {
  prepared: PreparedJob;
  /** The local path of each downloaded input, by input name. */
  inputPaths: Record<string, string>;
}

/** `preparing`: the job directory, the inputs, the executor's command; undefined when released instead. */
export async function prepareJob(s: JobContext, start: StartingJob): Promise<PreparedStart | undefined> {
  const { journal, executor, options, api } = s;
  journal.transition(s.jobPk, 'preparing', { jobDir: s.dir.root });
  try {
    s.dir = await createJobDir(s.dir);
    const inputPaths = await downloadInputs(api, start.job, s.dir, s.signal);
    const chosen = executor.executorFor(start.template.executor_class);
    if (!chosen) {
      const refused = executor.canRun(start.template);
      throw new PrepareError(refused?.code ?? 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN', refused?.reason ?? `no executor for ${start.template.executor_class}`);
    }
    const prepared = chosen.prepare(start.job, start.template, {
      dir: s.dir,
      gpu: start.gpu,
      inputPaths,
      serverUrl: options.serverUrl,
      nodePk: api.nodePk!,
      attempt: journal.get(s.jobPk)?.attempts ?? 1,
    });
    failPoint('preparing:after-http');
    if (!s.accepting()) throw new Error('the agent is draining');
    return { prepared, inputPaths };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    // The agent code (docs/ERRORS.md, "Agent codes") is what a log search or an alert matches on.
    s.log.warn({ err: reason, ...(err instanceof PrepareError ? { code: err.code } : {}) }, 'preparation failed; releasing the job so that another node can run it');
    s.skip(s.jobPk, reason);
    await release(s);
    return undefined;
  }
}

/**
 * `starting`: start on the server, then spawn. Returns the running child, or how the job left when
 * it could not start (released, requeued after a stop that came meanwhile, or errored).
 */
export async function startJob(
  s: JobContext,
  start: StartingJob & PreparedStart,
  stopReason: () => StopReason | undefined,
): Promise<RunningChild | RunOutcome> {
  const { journal } = s;
  journal.transition(s.jobPk, 'starting');
  const started = await startOnServer(s);
  // The agent exits before the server could say: `starting` stays, and recovery re-reads the job.
  if (started === undefined) return 'interrupted';
  if (!started) {
    await release(s);
    return 'released';
  }
  failPoint('starting:after-http');
  const stopped = stopDecision(stopReason());
  if (stopped) {
    // Stopped while the start was in flight (a shutdown, or fenced): report it, saying which, so it runs elsewhere.
    return finishWith(s, stopped.error, stopped.requeue, 'requeued');
  }
  await writeJobJson(s.dir, jobJsonContent(s.dir, start.job, start.template, start.prepared.parameters, start.inputPaths));
  let child: RunningChild;
  try {
    child = await spawnJob({ ...start.prepared.spec, lease: s.leases?.grant(s.jobPk, s.dir) });
  } catch (err) {
    s.leases?.release(s.jobPk);
    const error = `Could not start the command: ${err instanceof Error ? err.message : String(err)}`;
    s.log.error({ err: error }, 'spawn failed');
    return finishWith(s, error, false, 'error');
  }
  failPoint('child:after-spawn');
  journal.transition(s.jobPk, 'running', { pid: child.pid, pidStart: childStartIdentity(child.startTime) });
  return child;
}

/**
 * The start call; after an ambiguous failure, whether it landed. False when the job is not started;
 * undefined when the agent gave up (exiting) before the server could say.
 */
async function startOnServer(s: JobContext): Promise<boolean | undefined> {
  const { api } = s;
  try {
    await api.startJob(s.jobPk);
    return true;
  } catch (err) {
    if (isClientError(err) && err.ambiguous) {
      const landed = await startLanded(s);
      if (landed !== false) return landed;
    }
    const nodeBusy = isClientError(err, 'node-busy');
    s.log[nodeBusy ? 'error' : 'warn'](
      { err: err instanceof Error ? err.message : String(err) },
      nodeBusy ? 'start refused: the server says this node still works another job; releasing this one' : 'start refused; releasing the job',
    );
    return false;
  }
}

/**
 * After an ambiguous start: whether it landed, re-reading the job until the server answers. A re-read
 * that fails says nothing: taken as "not started", it released a job the server may show started by
 * this node — a release the server refuses, leaving the job STARTED with no child and the node busy
 * for as long as the agent runs. Undefined when the agent gives up first.
 */
async function startLanded(s: JobContext): Promise<boolean | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (s.signal.aborted) return undefined;
    try {
      return (await s.api.checkLanded('start', s.jobPk, { signal: s.signal })).landed;
    } catch (err) {
      if (s.signal.aborted) return undefined;
      // A definite answer (the job is gone, the read refused) ends the wait: release, as before. A
      // 408 or 429 (a proxy that gave up waiting, or throttles) is no answer about the job: ask again.
      if (!(isClientError(err) && (err.ambiguous || err.transient))) return false;
      const delay = retryDelayMs(attempt, 500, 15_000);
      s.log.warn({ err: err.message, retryInMs: delay }, 'start answered nothing clear and the job cannot be re-read; asking again');
      await sleepUnlessAborted(delay, s.signal);
    }
  }
}

/** Give back a job that never started and remove its directory. */
async function release(s: JobContext): Promise<void> {
  await releaseUnstartedJob(s);
  await removeJobDirUnlessKept(s);
}
