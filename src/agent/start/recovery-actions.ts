/**
 * Carrying out recovery's decisions (`recovery-rules.ts` decides): one handler per action. A handler
 * either settles the journal entry here (forget, release, requeue without a runner) or hands the job
 * to a runner in its slot that continues it in the background from where the journal says it stood
 * (re-attach, collect, upload, finish, clean up, release).
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { childStartIdentity } from '../child/identity.js';
import { removeJobDir, type JobDir } from '../child/job-dir.js';
import { fencedByWrapper } from '../child/lease.js';
import { stopGroup } from '../child/stop-group.js';
import { runSettingsOf, type RunSettings } from '../executors/types.js';
import type { ServerCallContext } from '../job/context.js';
import { FENCED_ERROR } from '../job/finish.js';
import type { JobRunner } from '../job/runner.js';
import { deliverFinish, releaseUnstarted, resetAndRelease } from '../job/server-calls.js';
import type { JobRecord } from '../journal/records.js';
import { isJobEdge } from '../journal/states.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { ExecutorPort } from '../ports.js';
import type { ChildFacts } from './child-facts.js';
import type { RecoveryAction } from './recovery-rules.js';

/** One unfinished journal entry as recovery found it, and the means to settle or continue it. */
export interface RecoveryEntry {
  readonly record: JobRecord;
  /** The server's job, re-read first; null when it no longer exists. */
  readonly job: JobJson | null;
  readonly child: ChildFacts;
  readonly dir: JobDir;
  /** The journalled server calls for the job, as the node the entry acquired it as. */
  readonly calls: ServerCallContext;
  readonly executor: ExecutorPort;
  readonly options: Pick<ResolvedAgentOptions, 'serverUrl' | 'killGraceMs'>;
  /** The entry was settled here. */
  settle(): void;
  /**
   * Give the job to a runner in its slot, started by `start` (one of its `resume*` methods); with no
   * slot of the plan left for it, in a slot of its own that leaves when the job ends.
   */
  continueIn(start: (runner: JobRunner) => Promise<unknown>): Promise<void>;
}

type Handler<K extends RecoveryAction['kind']> = (entry: RecoveryEntry, action: Extract<RecoveryAction, { kind: K }>) => Promise<void>;

/** The handler of each recovery action. */
export const RECOVERY_HANDLERS: { readonly [K in RecoveryAction['kind']]: Handler<K> } = {
  forget,
  release,
  reattach,
  collect,
  'resume-upload': resumeUpload,
  refinish,
  requeue: (entry, action) => finishWithoutChild(entry, action.error, true),
  fail: (entry, action) => finishWithoutChild(entry, action.error, false),
  cleanup,
  rerelease,
};

/** Carry out `action` for `entry` with the action's handler. */
export function carryOut(entry: RecoveryEntry, action: RecoveryAction): Promise<void> {
  // The table pairs each kind with its handler; TypeScript cannot follow that pairing through an index.
  const handler = RECOVERY_HANDLERS[action.kind] as (entry: RecoveryEntry, action: RecoveryAction) => Promise<void>;
  return handler(entry, action);
}

/** Nothing to do on the server: stop a child that still runs, close the entry. */
async function forget(entry: RecoveryEntry, action: Extract<RecoveryAction, { kind: 'forget' }>): Promise<void> {
  const { record, child, calls } = entry;
  if (action.stopChild && child.child) await stopGroup(child.child.pid, { graceMs: entry.options.killGraceMs });
  calls.journal.abandon(record.jobPk, `recovery: ${action.reason}`);
  await removeJobDir(entry.dir).catch(() => {});
  entry.settle();
}

/** Acquired and never started (or reset and not released): give it back to the queue. */
async function release(entry: RecoveryEntry, action: Extract<RecoveryAction, { kind: 'release' }>): Promise<void> {
  const { record, calls } = entry;
  if (isJobEdge(record.state, 'releasing')) {
    calls.journal.transition(record.jobPk, 'releasing');
    if (await releaseUnstarted(calls)) calls.journal.transition(record.jobPk, 'done');
  } else {
    await resetAndRelease(calls);
    calls.journal.abandon(record.jobPk, `recovery: ${action.reason}`);
  }
  await removeJobDir(entry.dir).catch(() => {});
  entry.settle();
}

/** The child still runs the job we hold: supervise it again as if nothing happened. */
async function reattach(entry: RecoveryEntry): Promise<void> {
  const { record, calls } = entry;
  const found = entry.child.child;
  const job = entry.job;
  if (!found || !job) throw new Error(`recovery of job ${record.jobPk}: re-attach without a job or a running child`);
  // The time limit counts from the start of the job's child. A child that follows a container
  // (`followOutside`, now or at an earlier restart) started with this agent: counted from its own
  // start, each restart would give the job its whole time limit again. The journal's `running` is
  // the first child's start (a wrapper re-attached as such started before it, and keeps its own).
  const running = record.state === 'running' ? Date.parse(record.stateTimes.running ?? '') : NaN;
  const child = running < found.startedAtMs ? { ...found, startedAtMs: running } : found;
  const settings = await settingsAgain(entry, job);
  // Spawned but never journalled as running: record the child found by its wrapper first.
  const identity = { pid: child.pid, pidStart: childStartIdentity(child.startTime) };
  if (record.state === 'starting') calls.journal.transition(record.jobPk, 'running', identity);
  // A new child that follows a container whose client was gone (`followOutside`): journal it instead.
  else if (record.pid !== child.pid) calls.journal.record(record.jobPk, identity);
  await entry.continueIn((r) => r.resumeRunning(child, settings));
}

/** The child ended with a known status: upload and report it (never run it again). */
async function collect(entry: RecoveryEntry): Promise<void> {
  const { record, calls } = entry;
  if (fencedByWrapper(entry.dir)) {
    // Its wrapper stopped it when the lease lapsed (the agent was down too long): the server has
    // given, or will give, the job to another node; report nothing of this run. The wrapper stops
    // only the `docker run` client: a container that ignored the forwarded SIGTERM is ended here.
    const outside = entry.job ? (await settingsAgain(entry, entry.job)).outside : undefined;
    if (outside) {
      await outside.stop(entry.options.killGraceMs);
      await outside.settle({ code: null, signal: null, source: 'lost' });
    }
    if (record.state === 'starting') calls.journal.transition(record.jobPk, 'running', { pid: record.pid });
    await entry.continueIn((r) => r.resumeFail(FENCED_ERROR, true));
    return;
  }
  const exit = entry.child.exit;
  const job = entry.job;
  if (!exit || !job) throw new Error(`recovery of job ${record.jobPk}: collect without a job or an exit status`);
  const settings = await settingsAgain(entry, job);
  // Never run again a job whose exit status is known: report it, from `starting` too.
  if (record.state === 'starting') calls.journal.transition(record.jobPk, 'running', { pid: record.pid });
  await entry.continueIn((r) => r.resumeCollect(exit, settings));
}

/**
 * Outputs were being uploaded: upload what is missing, then finish. The template's declared outputs
 * tell which of them the child did not leave: a success without them is still an error.
 */
async function resumeUpload(entry: RecoveryEntry): Promise<void> {
  const exit = entry.child.exit ?? { code: null, signal: null, source: 'lost' as const };
  const { outputTypes } = entry.job ? await settingsAgain(entry, entry.job) : { outputTypes: {} };
  await entry.continueIn((r) => r.resumeUpload(exit, outputTypes));
}

/** The finish decision is journalled but maybe not delivered: deliver it again, the same way. */
async function refinish(entry: RecoveryEntry): Promise<void> {
  const finish = entry.record.finish;
  if (!finish) throw new Error(`recovery of job ${entry.record.jobPk}: re-finish without a journalled decision`);
  // Decided when the agent began to stop the child, which may have outlived the agent: finish the
  // stop. Its container too, which is no member of the group (a child found now only follows it),
  // and which nothing would remove once the job is requeued.
  const outside = entry.job ? (await settingsAgain(entry, entry.job)).outside : undefined;
  await outside?.stop(entry.options.killGraceMs);
  if (entry.child.child) await stopGroup(entry.child.child.pid, { graceMs: entry.options.killGraceMs });
  await outside?.settle({ code: null, signal: null, source: 'lost' });
  await entry.continueIn((r) => r.resumeFinish(finish.error, finish.requeue));
}

/**
 * The child is gone without a status: finish with an error, then (unless the job has crashed the node
 * too often) reset and release it to run again.
 */
async function finishWithoutChild(entry: RecoveryEntry, error: string, requeue: boolean): Promise<void> {
  const { record, calls } = entry;
  calls.journal.noteRestart(record.jobPk);
  if (isJobEdge(record.state, 'finishing')) {
    await entry.continueIn((r) => r.resumeFail(error, requeue));
  } else {
    await requeueOffTheBooks(calls, error, requeue);
    entry.settle();
  }
}

/** Cancelled or taken away while the agent was down: stop the child, finish silently to clear `current_job`. */
async function cleanup(entry: RecoveryEntry, action: Extract<RecoveryAction, { kind: 'cleanup' }>): Promise<void> {
  const child = action.stopChild ? entry.child.child : undefined;
  // The job's container (if any) is stopped and removed too, whether or not its client still runs.
  const outside = entry.job ? (await settingsAgain(entry, entry.job)).outside : undefined;
  await entry.continueIn((r) => r.resumeCleanup(child, entry.record.state, outside));
}

/** The finish went through as an error: reset (when ERRORED and ours) and release remain. */
async function rerelease(entry: RecoveryEntry, action: Extract<RecoveryAction, { kind: 'rerelease' }>): Promise<void> {
  const { record, calls } = entry;
  const state = record.state;
  if (state === 'finishing' || state === 'releasing') {
    const requeue = state === 'releasing' || record.finish?.requeue === true;
    await entry.continueIn((r) => r.resumeRelease(state, requeue));
  } else {
    await resetAndRelease(calls);
    calls.journal.abandon(record.jobPk, `recovery: ${action.reason}`);
    entry.settle();
  }
}

/**
 * Finish with an error and (optionally) reset + release a job whose journal state has no edge to
 * `finishing`, then close the entry.
 */
async function requeueOffTheBooks(calls: ServerCallContext, error: string, requeue = true): Promise<void> {
  const finished = await deliverFinish(calls, error);
  if (finished.delivered && requeue) await resetAndRelease(calls);
  calls.journal.abandon(calls.jobPk, `recovery: ${error}`);
}

/**
 * The executor settings of a recovered job (time limit, progress regex, output types), by preparing
 * it again: `prepare` is pure, so nothing is written or run. Defaults when that fails.
 */
async function settingsAgain(entry: RecoveryEntry, job: JobJson): Promise<RunSettings> {
  const fallback: RunSettings = { timeLimitMs: undefined, progressRegex: undefined, outputTypes: {} };
  const template = await readTemplate(entry, job);
  const executor = template ? entry.executor.executorFor(template.executor_class) : undefined;
  if (!template || !executor) return fallback;
  try {
    return runSettingsOf(executor.prepare(job, template, {
      dir: entry.dir,
      gpu: null,
      serverUrl: entry.options.serverUrl,
      nodePk: entry.calls.api.nodePk ?? 0,
      attempt: entry.record.attempts,
    }));
  } catch (err) {
    entry.calls.log.warn({ job: job.pk, err: String(err) }, 'could not prepare a recovered job again; using default settings');
    return fallback;
  }
}

async function readTemplate(entry: RecoveryEntry, job: JobJson): Promise<TemplateJson | undefined> {
  try {
    return await entry.calls.api.getTemplate(job.template.pk, { signal: entry.calls.signal });
  } catch (err) {
    entry.calls.log.warn({ job: job.pk, err: String(err) }, 'could not read the template of a recovered job');
    return undefined;
  }
}
