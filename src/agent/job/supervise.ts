/**
 * Watching one running child (docs/ARCHITECTURE.md, "One job"): its supervisor (time limit, group stop), its progress
 * (followed from the log files, coalesced to the server), and its cancellation (web-socket where the
 * server authenticates watchers, plus a re-read timer). Resolves with how the child ended and whether
 * the job was lost (cancelled or taken away) meanwhile.
 */
import { isClientError } from '../../client/errors.js';
import { CancelWatch, type LossReason } from './cancel-watch.js';
import type { OutsideWork, RunningChild } from '../child/running-child.js';
import { ChildSupervisor, type StopReason, type SupervisedExit } from '../child/supervisor.js';
import { failPoint } from '../fail-points.js';
import { startLiveLog } from '../logs/job-log-hooks.js';
import { JobProgress } from '../progress/job-progress.js';
import { ReportFailures } from '../progress/report-failures.js';
import type { ProgressUpdate } from '../progress/update.js';
import type { JobContext } from './context.js';

/** What the job's runner hears while its child runs, and what it decides. */
export interface SuperviseHooks {
  /** False once progress must not be sent any more (lost, fenced). */
  mayReport(): boolean;
  onProgress(update: ProgressUpdate): void;
  onLost(reason: LossReason): void;
  /** The supervisor begins to stop the child (the child had not ended yet). */
  onStop(reason: StopReason): void;
}

export interface SupervisedRun {
  supervisor: ChildSupervisor;
  /** Resolves when the child has ended and its progress is flushed. */
  ended: Promise<SupervisedExit>;
}

export function superviseChild(
  ctx: JobContext,
  child: RunningChild,
  settings: {
    timeLimitMs: number | undefined;
    progressRegex: RegExp | undefined;
    outside?: OutsideWork | undefined;
    /** Re-attached to a child that ran while no agent followed it: the highest progress reported before. */
    resume?: { lastReported: number | null } | undefined;
  },
  hooks: SuperviseHooks,
): SupervisedRun {
  const { api, jobPk, log, options } = ctx;
  const supervisor = new ChildSupervisor(child, {
    timeLimitMs: settings.timeLimitMs,
    killGraceMs: options.killGraceMs,
    outside: settings.outside,
    onStop: (reason) => {
      log.info({ reason }, 'stopping the child');
      hooks.onStop(reason);
    },
  });
  let cancel: CancelWatch | undefined;
  const failures = new ReportFailures({ log });
  const progress = new JobProgress({
    files: [child.dir.consolePath],
    regex: settings.progressRegex,
    intervalMs: options.progressIntervalMs,
    resume: settings.resume,
    report: async (update) => {
      if (!hooks.mayReport()) return;
      hooks.onProgress(update);
      await api.progressJob(jobPk, update.progress, update.data);
      failures.succeeded();
      failPoint('running:after-http');
      ctx.journal.record(jobPk, { lastProgress: update.progress });
    },
    onReportError: (err, update) => {
      // A refused progress (406) often means cancelled: check now rather than at the next tick.
      if (isClientError(err, 'phase') || isClientError(err, 'forbidden')) void cancel?.checkNow();
      failures.failed(err, update.progress);
    },
    onParserError: (err) => log.warn({ err: String(err) }, "the template's progress regex failed; it is disabled for this job"),
  });
  progress.start();
  const liveLog = startLiveLog(ctx, jobPk, child.dir, log);
  cancel = new CancelWatch({
    api,
    jobPk,
    intervalMs: options.cancelCheckIntervalMs,
    useWebSocket: ctx.useWebSocket,
    log,
    onLost: (reason) => {
      hooks.onLost(reason);
      log.info({ reason }, reason === 'cancelled' ? 'the job was cancelled' : 'the job was taken away from this node');
      void supervisor.stop('cancelled');
    },
  });
  cancel.start();
  const ended = supervisor.done.then(async (result) => {
    cancel.stop();
    // Reads the logs to their end and sends the last value with its data.
    await progress.stop();
    // The rest of the live log goes with the `log` output (`finish.ts`), from the journalled offset.
    await liveLog?.stop();
    return result;
  });
  return { supervisor, ended };
}
