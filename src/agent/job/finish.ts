/**
 * How a job leaves this agent (docs/ARCHITECTURE.md, "One job"): once its child has ended, decide what goes up (every
 * output and the log, only the log, or nothing), upload it, journal the finish decision, deliver it,
 * and — when the job must run again elsewhere — reset and release it; then close the journal entry
 * and remove the job directory. Recovery enters here too, part-way, from the journal's state.
 *
 * ```
 * child ended ─ lost (cancelled / taken away) ─────────────── finishing → finish(error) → done
 *             ─ fenced ───────────────────────────────────── finishing → finish(error) → reset → release → done
 *             ─ shutdown ─ upload log ────────────────────── finishing → finish(error) → reset → release → done
 *             ─ ended by itself ─ upload outputs and log ─── finishing → finish(error | success) → done
 * ```
 */
import { phaseOf } from '../../protocol/phase.js';
import type { LossReason } from './cancel-watch.js';
import { finishErrorText } from '../child/exit-text.js';
import type { OutsideEnd, OutsideWork, RunningChild } from '../child/running-child.js';
import { ChildSupervisor, type StopReason, type SupervisedExit } from '../child/supervisor.js';
import type { ExitResult } from '../child/wrapper.js';
import { removeJobDir } from '../child/job-dir.js';
import type { RunSettings } from '../executors/types.js';
import type { FinishDecision } from '../journal/records.js';
import { isJobEdge, type JobState } from '../journal/states.js';
import { finishJobLog } from '../logs/job-log-hooks.js';
import { scanOutputs } from '../outputs/scan.js';
import { LOG_OUTPUT_NAME } from '../outputs/names.js';
import type { JobContext, RunOutcome } from './context.js';
import { deliverFinish, resetAndRelease, uploadOutputs } from './server-calls.js';

export const SHUTDOWN_ERROR = 'The node is shutting down; the job will run again elsewhere.';
export const FENCED_ERROR = 'The node lost contact with the server and stopped the job; it will run again elsewhere.';

/**
 * The finish that a stop by the agent itself decides (shutdown, fencing): the job is requeued, whatever
 * its child's exit status says. Known when the stop begins, so the runner journals it then: recovery
 * after a crash before `finishing` must requeue the job too, never report the stopped run as the job's
 * own failure. Undefined for the other stops, whose finish depends on how the child ended.
 */
export function stopDecision(reason: StopReason | undefined): FinishDecision | undefined {
  if (reason === 'shutdown') return { error: SHUTDOWN_ERROR, requeue: true };
  if (reason === 'fenced') return { error: FENCED_ERROR, requeue: true };
  return undefined;
}

/** After the child ended (or was stopped): upload what is owed and report the job. */
export async function reportEnd(s: JobContext, result: SupervisedExit, run: RunSettings, lost: LossReason | undefined): Promise<RunOutcome> {
  const { journal } = s;
  if (lost !== undefined) {
    // Cancelled or taken away: nothing is uploaded; finish is the silent clean-up of current_job.
    // The error is sent anyway: should the server still show the job running by us, it must not
    // turn into a success without outputs.
    return finishWith(s, lost === 'cancelled' ? 'Cancelled' : 'Taken away from this node', false, lost === 'cancelled' ? 'cancelled' : 'lost');
  }
  if (result.stopReason === 'fenced') {
    // After self-fencing (docs/ARCHITECTURE.md, "Self-fencing"): deliverFinish retries until the server answers. If lost-node
    // recovery aborted the job meanwhile, the finish is the silent clean-up; if not, it errors the
    // job and we requeue it.
    const { error, requeue } = stopDecision('fenced')!;
    return finishWith(s, error, requeue, 'fenced');
  }
  if (result.stopReason === 'shutdown') {
    // Only the log goes up (reset will remove it with the outputs on the reference; it helps whoever looks now).
    await collectOutputs(s, {}, true);
    journal.transition(s.jobPk, 'uploading');
    await uploadOutputs(s);
    const { error, requeue } = stopDecision('shutdown')!;
    return finishWith(s, error, requeue, 'requeued');
  }
  const missing = await collectOutputs(s, run.outputTypes, false);
  journal.transition(s.jobPk, 'uploading');
  return uploadAndFinish(s, result, run.timeLimitMs, missing);
}

/**
 * Register the outputs in the journal: every file of the output directory (unless `logOnly`) and the
 * job's log. Returns the declared outputs the child did not leave (a success without them is an error).
 */
export async function collectOutputs(s: JobContext, outputTypes: Readonly<Record<string, string>>, logOnly: boolean): Promise<string[]> {
  const { journal } = s;
  let missing: string[] = [];
  if (!logOnly) {
    try {
      const scan = await scanOutputs(s.dir.outputDir, outputTypes);
      for (const file of scan.files) journal.registerOutput(s.jobPk, file);
      for (const skipped of scan.skipped) s.log.warn({ file: skipped.name, reason: skipped.reason }, 'not uploading a file of the output directory');
      missing = scan.missing;
    } catch (err) {
      s.log.error({ err: String(err) }, 'could not collect the outputs');
      missing = ['(the output directory could not be read)'];
    }
  }
  try {
    journal.registerOutput(s.jobPk, await finishJobLog(s, s.jobPk, s.dir, s.log, s.signal));
  } catch (err) {
    s.log.error({ err: String(err) }, 'could not build the log output');
  }
  return missing;
}

/**
 * The declared outputs that no journalled output names: what {@link collectOutputs} found missing,
 * read back after a crash in `uploading` (every file the scan found was registered before it). The
 * job log is journalled as `log`, a name no file of the output directory can have: it never stands
 * for a declared output of that name, which the scan reports missing.
 */
export function missingRegistered(s: Pick<JobContext, 'journal' | 'jobPk'>, outputTypes: Readonly<Record<string, string>>): string[] {
  const registered = new Set(
    s.journal
      .outputs(s.jobPk)
      .map((output) => output.name)
      .filter((name) => name !== LOG_OUTPUT_NAME),
  );
  return Object.keys(outputTypes)
    .filter((name) => !registered.has(name))
    .sort();
}

/** An exit learned without supervising the child (it ended while the agent was down). */
export function unsupervisedExit(exit: ExitResult, outside?: OutsideEnd): SupervisedExit {
  return { exit, stopReason: undefined, forced: false, strays: 0, survivors: [], ...(outside ? { outside } : {}) };
}

/** Upload, then finish: success only when every output is on the server. */
export async function uploadAndFinish(s: JobContext, result: SupervisedExit, timeLimitMs: number | undefined, missing: readonly string[]): Promise<RunOutcome> {
  const failed = await uploadOutputs(s);
  if (s.signal.aborted) return 'interrupted';
  let error = (await finishErrorText(result, s.dir, { timeLimitMs })) ?? null;
  if (error === null && missing.length > 0) {
    error = `The command succeeded but did not leave its declared output(s): ${missing.join(', ')}`;
  }
  if (error === null && failed.length > 0) {
    error = `The job succeeded but ${failed.length} output(s) could not be uploaded: ${failed
      .map((o) => `${o.name} (${o.type}): ${o.lastError ?? 'failed'}`)
      .join('; ')}`;
  }
  return finishWith(s, error, false, error === null ? 'success' : 'error');
}

/** Journal the finish decision (`error: null` = success), then deliver it. */
export async function finishWith(s: JobContext, error: string | null, requeue: boolean, outcome: RunOutcome): Promise<RunOutcome> {
  s.journal.transition(s.jobPk, 'finishing', { finish: { error, requeue } });
  return deliver(s, error, requeue, outcome);
}

/** Deliver the journalled finish; then done, or reset+release when `requeue`. */
export async function deliver(s: JobContext, error: string | null, requeue: boolean, outcome: RunOutcome): Promise<RunOutcome> {
  const { journal } = s;
  const finished = await deliverFinish(s, error);
  if (!finished.delivered) return 'interrupted';
  const job = finished.job;
  // A job the server shows cancelled or taken away was not ours to requeue or report.
  if (job && (phaseOf(job) === 'CANCELLED' || job.node !== s.api.nodePk) && outcome !== 'cancelled' && outcome !== 'lost') {
    outcome = phaseOf(job) === 'CANCELLED' ? 'cancelled' : 'lost';
    requeue = false;
  }
  if (requeue && job && phaseOf(job) === 'ERRORED') {
    journal.transition(s.jobPk, 'releasing');
    if (!(await resetAndRelease(s))) return 'interrupted';
  }
  return settle(s, outcome, error);
}

/** Close the journal entry (`done`), remove the job directory, and say how the job left. */
export async function settle(s: JobContext, outcome: RunOutcome, error: string | null): Promise<RunOutcome> {
  s.journal.transition(s.jobPk, 'done');
  await removeJobDirUnlessKept(s);
  s.end(outcome, error);
  return outcome;
}

/** Recovery: cancelled or taken away while the agent was down: stop what runs, finish silently. */
export async function cleanUpLost(s: JobContext, child: RunningChild | undefined, fromState: JobState, outside?: OutsideWork): Promise<RunOutcome> {
  if (child) {
    const supervisor = new ChildSupervisor(child, { killGraceMs: s.options.killGraceMs, outside });
    await supervisor.stop('cancelled');
  } else if (outside) {
    await outside.stop(s.options.killGraceMs);
    await outside.settle({ code: null, signal: null, source: 'lost' });
  }
  if (isJobEdge(fromState, 'finishing')) return finishWith(s, 'Cancelled', false, 'cancelled');
  // No journal edge leads to finishing from here (the finish belongs to an earlier attempt):
  // clear current_job with the silent finish, then close the entry.
  const finished = await deliverFinish(s, 'Cancelled');
  if (!finished.delivered) return 'interrupted';
  if (fromState !== 'finishing') {
    s.journal.abandon(s.jobPk, 'cancelled or taken away while the agent was down');
    await removeJobDirUnlessKept(s);
    s.end('cancelled', 'Cancelled');
    return 'cancelled';
  }
  return settle(s, 'cancelled', 'Cancelled');
}

/** Recovery: reset (if needed) and release a job whose finish was delivered as a requeue. */
export async function releaseFinished(s: JobContext, fromState: 'finishing' | 'releasing', requeue: boolean): Promise<RunOutcome> {
  const { journal } = s;
  if (fromState === 'finishing' && !requeue) {
    // The finish landed and nothing is to be given back: only the journal's result was missing.
    const error = journal.get(s.jobPk)?.finish?.error ?? null;
    return settle(s, error === null ? 'success' : 'error', error);
  }
  if (fromState === 'finishing') journal.transition(s.jobPk, 'releasing');
  if (!(await resetAndRelease(s))) return 'interrupted';
  return settle(s, 'requeued', null);
}

/** Remove the job directory, unless the options keep job directories. */
export async function removeJobDirUnlessKept(s: Pick<JobContext, 'options' | 'dir' | 'log'>): Promise<void> {
  if (s.options.keepJobDirs) return;
  await removeJobDir(s.dir).catch((err: unknown) => s.log.warn({ err: String(err) }, 'could not remove the job directory'));
}
