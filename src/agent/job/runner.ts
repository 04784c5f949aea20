/**
 * One job from acquire to done, journalled: the intent is written before each HTTP call and the
 * result after it, and the fail points sit in between (docs/ARCHITECTURE.md, "One job").
 *
 * ```
 * claim():  acquiring → acquire → acquired → re-read (node == self?) ─┐
 * run():    preparing → downloads, prepare ─(fails: releasing → release → done, job skipped a while)
 *           starting → start → spawn → running (pid, start time) → supervise:
 *             progress coalesced to the server, cancel by web-socket + timer, time limit
 *           exit status recorded → uploading (every output + log) → finishing → finish → done
 *           (requeue: finishing → finish(error) → releasing → reset → release → done)
 * ```
 *
 * The stages live beside this file, in order: `claim.ts`, `start.ts`, `supervise.ts`, `finish.ts`
 * (with the journalled calls of `server-calls.ts`). Recovery enters the same machine part-way
 * through (`resume*`), so a restarted agent continues a job exactly where the journal says it stood.
 */
import { setMaxListeners } from 'node:events';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { describeExit } from '../child/exit-text.js';
import { jobDirPaths, type JobDir } from '../child/job-dir.js';
import { fencedByWrapper } from '../child/lease.js';
import type { OutsideEnd, OutsideWork, RunningChild } from '../child/running-child.js';
import type { ChildSupervisor, StopReason } from '../child/supervisor.js';
import type { ExitResult } from '../child/wrapper.js';
import { runSettingsOf, type RunSettings } from '../executors/types.js';
import { failPoint } from '../fail-points.js';
import { isJournalWriteFailure } from '../journal/errors.js';
import { isJobEdge, type JobState } from '../journal/states.js';
import type { NodeApi } from '../ports.js';
import { cudaVisibleDevices, type SlotSpec } from '../slots/slots.js';
import type { LossReason } from './cancel-watch.js';
import { claimJob, type ClaimResult } from './claim.js';
import type { JobContext, JobLogger, JobsShared, RunOutcome } from './context.js';
import { cleanUpLost, collectOutputs, deliver, finishWith, missingRegistered, releaseFinished, reportEnd, stopDecision, unsupervisedExit, uploadAndFinish } from './finish.js';
import { prepareJob, startJob } from './start.js';
import { superviseChild } from './supervise.js';

/** Where a job stands on this agent, for the status snapshot. */
export type JobPhase = 'claiming' | 'preparing' | 'starting' | 'running' | 'reporting' | 'ended';

/** A job in flight, as `/status.json` shows it. */
export interface JobStatus {
  jobPk: number;
  slot: number;
  phase: JobPhase;
  progress: number | null;
  pid: number | null;
  startedAt: number | null;
}

export class JobRunner {
  readonly jobPk: number;
  readonly slot: SlotSpec;
  readonly log: JobLogger;
  readonly #ctx: JobContext;
  /** Aborted when the agent exits without waiting: reporting loops give up, the journal keeps the rest. */
  readonly #giveUp = new AbortController();
  #supervisor: ChildSupervisor | undefined;
  #lost: LossReason | undefined;
  #stopReason: StopReason | undefined;
  #phase: JobPhase = 'claiming';
  #progress: number | null = null;
  #startedAt: number | null = null;
  #done: Promise<RunOutcome> | undefined;

  /**
   * `job.dir`: the directory of a journalled job (recovery: the one its entry records); a new job gets
   * a new one, in the directory of the server the agent works for.
   */
  constructor(shared: JobsShared, job: { jobPk: number; slot: SlotSpec; api: NodeApi; log: JobLogger; dir?: JobDir }) {
    this.jobPk = job.jobPk;
    this.slot = job.slot;
    this.log = job.log;
    // Every reporting call of the job listens to it (not a leak).
    setMaxListeners(0, this.#giveUp.signal);
    this.#ctx = {
      ...shared,
      ...job,
      signal: this.#giveUp.signal,
      dir: job.dir ?? jobDirPaths(shared.options.workDir, shared.options.serverUrl, job.jobPk),
      end: (outcome, error) => this.#end(outcome, error),
    };
  }

  /** A snapshot for the agent's status. */
  get status(): JobStatus {
    return {
      jobPk: this.jobPk,
      slot: this.slot.index,
      phase: this.#phase,
      progress: this.#progress,
      pid: this.#supervisor?.child.pid ?? null,
      startedAt: this.#startedAt,
    };
  }

  /** The client of the node the job reports as (the one it was acquired as). */
  get api(): NodeApi {
    return this.#ctx.api;
  }

  /** Resolves when the job has left this agent. */
  get done(): Promise<RunOutcome> | undefined {
    return this.#done;
  }

  // ── claim ─────────────────────────────────────────────────────────────────────────────────────

  /** Acquire the job and confirm it is ours (`claim.ts`). */
  claim(job: JobJson, template: TemplateJson): Promise<ClaimResult> {
    return claimJob(this.#ctx, job, template);
  }

  // ── run ───────────────────────────────────────────────────────────────────────────────────────

  /** After a successful {@link claim}: run the claimed job to its end in the background. */
  run(job: JobJson, template: TemplateJson): Promise<RunOutcome> {
    this.#done ??= this.#guard(() => this.#runFromClaim(job, template));
    return this.#done;
  }

  /** Prepare and start (`start.ts`), then supervise and report. */
  async #runFromClaim(job: JobJson, template: TemplateJson): Promise<RunOutcome> {
    const starting = { job, template, gpu: this.#gpu() };
    this.#phase = 'preparing';
    const prepared = await prepareJob(this.#ctx, starting);
    if (prepared === undefined) return 'released';
    this.#phase = 'starting';
    const child = await startJob(this.#ctx, { ...starting, ...prepared }, () => this.#stopReason);
    if (typeof child === 'string') return child;
    return this.#superviseAndReport(child, runSettingsOf(prepared.prepared));
  }

  /** Watch the child (`supervise.ts`) until it ends, then report the job (`finish.ts`). */
  async #superviseAndReport(child: RunningChild, run: RunSettings): Promise<RunOutcome> {
    const ctx = this.#ctx;
    this.#phase = 'running';
    this.#startedAt = child.startedAtMs;
    ctx.emit('started', { jobPk: this.jobPk, slot: this.slot.index, pid: child.pid });
    this.log.info({ pid: child.pid, origin: child.origin, dir: child.dir.root }, child.origin === 'attached' ? 're-attached to the running child' : 'child started');
    // After a re-attach the logs hold what the child printed meanwhile; progress goes on from the
    // highest value this attempt reported, never below it.
    const resume = child.origin === 'attached' ? { lastReported: ctx.journal.get(this.jobPk)?.lastProgress ?? null } : undefined;
    const { supervisor, ended } = superviseChild(ctx, child, { ...run, resume }, {
      // Nothing more is reported for a job that is no longer ours, or fenced (by us or its wrapper).
      mayReport: () => this.#lost === undefined && this.#stopReason !== 'fenced' && !(ctx.leases?.lapsed(this.jobPk) ?? false),
      onProgress: (update) => {
        this.#progress = update.progress;
        ctx.emit('progressed', { jobPk: this.jobPk, progress: update.progress, data: update.data });
      },
      onLost: (reason) => {
        this.#lost = reason;
      },
      onStop: (reason) => {
        // The stop decides the finish (requeue): journalled now, with the child still running, so
        // that an agent killed before `finishing` (the log upload can wait for the server) leaves
        // recovery the same decision, not an exit status to report as the job's own failure.
        const decided = this.#lost === undefined ? stopDecision(reason) : undefined;
        if (!decided) return;
        try {
          ctx.journal.record(this.jobPk, { finish: decided });
        } catch (err) {
          // The child is stopped all the same (a stop must never hang on the journal); the agent
          // takes no more work and restarts once the journal can be written, for recovery.
          if (!isJournalWriteFailure(err)) throw err;
          this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'the journal could not record why the job is stopped; stopping it all the same');
          ctx.journalWriteFailed(this.jobPk, err);
        }
      },
    });
    this.#supervisor = supervisor;
    if (this.#stopReason) void supervisor.stop(this.#stopReason);
    let result = await ended;
    ctx.leases?.release(this.jobPk);
    if (result.stopReason === undefined && fencedByWrapper(child.dir)) {
      // The wrapper stopped it: the agent did not renew the lease in time (frozen, or cut off).
      this.log.error({}, 'the job was stopped by its wrapper because its lease lapsed; it will run again elsewhere');
      this.#stopReason = 'fenced';
      result = { ...result, stopReason: 'fenced' };
    }
    failPoint('child:after-exit');
    ctx.journal.record(this.jobPk, { exitCode: result.exit.code, exitSignal: result.exit.signal });
    if (result.survivors.length > 0) {
      this.log.error({ survivors: result.survivors.map((p) => p.pid) }, 'processes of the job survived SIGKILL');
    }
    this.#logLeftOver(result.outside);
    this.log.info(
      { exit: describeExit(result.exit), stopReason: result.stopReason, forced: result.forced, strays: result.strays, explanation: result.outside?.explanation },
      'child ended',
    );
    this.#phase = 'reporting';
    return reportEnd(ctx, result, run, this.#lost);
  }

  // ── recovery entry points ─────────────────────────────────────────────────────────────────────

  /** Re-attached to a child that still runs: supervise it as if nothing happened. */
  resumeRunning(child: RunningChild, run: RunSettings): Promise<RunOutcome> {
    this.#ctx.dir = child.dir;
    this.#ctx.leases?.adopt(this.jobPk, child.dir);
    this.#done ??= this.#guard(() => this.#superviseAndReport(child, run));
    return this.#done;
  }

  /** The child exited while the agent was down, with a known status: upload and report it. */
  resumeCollect(exit: ExitResult, run: Pick<RunSettings, 'outputTypes' | 'outside'>): Promise<RunOutcome> {
    return this.#resume(async (ctx) => {
      ctx.journal.record(this.jobPk, { exitCode: exit.code, exitSignal: exit.signal });
      // A container that ended while the agent was down is still there: how it ended, then remove it.
      const outside = await run.outside?.settle(exit);
      this.#logLeftOver(outside);
      const missing = await collectOutputs(ctx, run.outputTypes, false);
      ctx.journal.transition(this.jobPk, 'uploading');
      return uploadAndFinish(ctx, unsupervisedExit(exit, outside), undefined, missing);
    });
  }

  /**
   * Uploads were under way: finish them, then report with the recorded exit status, and the declared
   * outputs the child did not leave (`outputTypes`: the template's) as the run would have.
   */
  resumeUpload(exit: ExitResult, outputTypes: Readonly<Record<string, string>>): Promise<RunOutcome> {
    return this.#resume((ctx) => uploadAndFinish(ctx, unsupervisedExit(exit), undefined, missingRegistered(ctx, outputTypes)));
  }

  /**
   * The finish decision is journalled: deliver it again (then reset+release if it was a requeue). A
   * decision journalled when the agent stopped the child, before `finishing`, enters `finishing` first.
   */
  resumeFinish(error: string | null, requeue: boolean): Promise<RunOutcome> {
    const outcome = requeue ? 'requeued' : error === null ? 'success' : 'error';
    return this.#resume((ctx) => {
      const state = ctx.journal.get(this.jobPk)?.state;
      return state !== undefined && isJobEdge(state, 'finishing') ? finishWith(ctx, error, requeue, outcome) : deliver(ctx, error, requeue, outcome);
    });
  }

  /** Report an error for a job whose child is gone; requeue it unless it is poisoned. */
  resumeFail(error: string, requeue: boolean): Promise<RunOutcome> {
    return this.#resume((ctx) => finishWith(ctx, error, requeue, requeue ? 'requeued' : 'error'));
  }

  /** Cancelled or taken away while the agent was down: stop what runs, finish silently. */
  resumeCleanup(child: RunningChild | undefined, fromState: JobState, outside?: OutsideWork): Promise<RunOutcome> {
    return this.#resume((ctx) => cleanUpLost(ctx, child, fromState, outside));
  }

  /** Reset (if needed) and release a job whose finish was delivered as a requeue. */
  resumeRelease(fromState: 'finishing' | 'releasing', requeue: boolean): Promise<RunOutcome> {
    return this.#resume((ctx) => releaseFinished(ctx, fromState, requeue));
  }

  /** Continue a journalled job in its reporting phase (once). */
  #resume(body: (ctx: JobContext) => Promise<RunOutcome>): Promise<RunOutcome> {
    this.#done ??= this.#guard(() => {
      this.#phase = 'reporting';
      return body(this.#ctx);
    });
    return this.#done;
  }

  // ── stopping ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Stop the job now: `shutdown` (second signal: requeue it elsewhere) or `fenced` (the server is
   * unreachable too long). Before start the job is released; after, the child's group is stopped.
   */
  stop(reason: 'shutdown' | 'fenced'): void {
    if (this.#stopReason) return;
    this.#stopReason = reason;
    void this.#supervisor?.stop(reason);
  }

  /** Give up on reporting (the agent exits now); what is owed stays in the journal. */
  abandonReporting(): void {
    this.#giveUp.abort();
  }

  get stopping(): StopReason | undefined {
    return this.#stopReason;
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────────

  #gpu(): string | null {
    const value = cudaVisibleDevices(this.slot);
    return value === '' ? null : value;
  }

  /** Work outside the child that could not be removed (a container): the operator must know. */
  #logLeftOver(outside: OutsideEnd | undefined): void {
    if (outside?.leftOver !== undefined) this.log.error({ leftOver: outside.leftOver }, 'work of the job outside its process group is left behind');
  }

  #end(outcome: RunOutcome, error: string | null): void {
    if (this.#phase === 'ended') return;
    this.#phase = 'ended';
    this.log.info({ outcome, error: error === null ? undefined : error.split('\n')[0] }, 'job left this node');
    this.#ctx.metrics.jobsEnded.inc({ outcome });
    this.#ctx.emit('finished', { jobPk: this.jobPk, slot: this.slot.index, outcome, error });
  }

  /** Never let a bug escape as an unhandled rejection: log it; the journal lets recovery finish the job. */
  async #guard(body: () => Promise<RunOutcome>): Promise<RunOutcome> {
    try {
      const outcome = await body();
      if (outcome === 'interrupted' || outcome === 'released' || outcome === 'lost') this.#end(outcome, null);
      return outcome;
    } catch (err) {
      if (isJournalWriteFailure(err)) {
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'the journal could not be written; the job is left to recovery');
        this.#ctx.journalWriteFailed(this.jobPk, err);
        this.#end('interrupted', err instanceof Error ? err.message : String(err));
        return 'interrupted';
      }
      this.log.error({ err }, 'job runner failed unexpectedly; the journal keeps its state for recovery');
      this.#end('interrupted', err instanceof Error ? err.message : String(err));
      return 'interrupted';
    }
  }
}
