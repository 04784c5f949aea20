/**
 * One job from acquire to done (DESIGN §4, §5), journalled: the intent is written before each HTTP
 * call and the result after it, and the fail points sit in between.
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
 * Recovery enters the same machine part-way through (`resume*`), so a restarted agent continues a
 * job exactly where the journal says it stood.
 */
import { setMaxListeners } from 'node:events';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import type { LossReason } from './cancel-watch.js';
import { describeExit } from '../child/exit-text.js';
import { jobDirPaths, removeJobDir, type JobDir } from '../child/job-dir.js';
import { fencedByWrapper } from '../child/lease.js';
import type { RunningChild } from '../child/running-child.js';
import type { ChildSupervisor, StopReason } from '../child/supervisor.js';
import type { ExitResult } from '../child/wrapper.js';
import { failPoint } from '../fail-points.js';
import type { JobState } from '../journal/states.js';
import { claimJob } from './claim.js';
import { cleanUpLost, collectOutputs, deliver, finishWith, releaseFinished, reportEnd, unsupervisedExit, uploadAndFinish } from './finish.js';
import type { ReportContext } from './server-calls.js';
import { prepareJob, startJob } from './start.js';
import { superviseChild } from './supervise.js';
import type { ClaimOutcome } from '../poll/loop.js';
import { runSettingsOf, type JobScope, type RunOutcome, type RunnerDeps, type RunnerLogger, type RunSettings } from './context.js';
import { cudaVisibleDevices, type SlotSpec } from '../slots/slots.js';

export type { RunOutcome, RunnerDeps, RunnerHooks, RunnerLogger, RunSettings } from './context.js';
export { runSettingsOf } from './context.js';

const UPLOAD_ATTEMPTS = 3;

export class JobRunner {
  readonly jobPk: number;
  readonly slot: SlotSpec;
  readonly log: RunnerLogger;
  readonly #d: RunnerDeps;
  /** Aborted when the agent exits without waiting: reporting loops give up, the journal keeps the rest. */
  readonly #giveUp = new AbortController();
  readonly #scope: JobScope;
  #job: JobJson | undefined;
  #template: TemplateJson | undefined;
  #dir: JobDir;
  #supervisor: ChildSupervisor | undefined;
  #lost: LossReason | undefined;
  #stopReason: StopReason | undefined;
  #phase: 'claiming' | 'preparing' | 'starting' | 'running' | 'reporting' | 'ended' = 'claiming';
  #progress: number | null = null;
  #startedAt: number | null = null;
  #done: Promise<RunOutcome> | undefined;

  constructor(jobPk: number, deps: RunnerDeps) {
    this.jobPk = jobPk;
    this.slot = deps.slot;
    this.#d = deps;
    this.log = deps.log;
    this.#dir = jobDirPaths(deps.options.workDir, jobPk);
    // Every reporting call of the job listens to it (not a leak).
    setMaxListeners(0, this.#giveUp.signal);
    this.#scope = this.#createScope();
  }

  /** A snapshot for the agent's status. */
  get status(): { jobPk: number; slot: number; phase: string; progress: number | null; pid: number | null; startedAt: number | null } {
    return {
      jobPk: this.jobPk,
      slot: this.slot.index,
      phase: this.#phase,
      progress: this.#progress,
      pid: this.#supervisor?.child.pid ?? null,
      startedAt: this.#startedAt,
    };
  }

  /** Resolves when the job has left this agent. */
  get done(): Promise<RunOutcome> | undefined {
    return this.#done;
  }

  // ── claim ─────────────────────────────────────────────────────────────────────────────────────

  /** Acquire the job and confirm it is ours (`job-claim.ts`). */
  async claim(job: JobJson, template: TemplateJson): Promise<ClaimOutcome> {
    this.#template = template;
    const result = await claimJob(job, template, {
      report: this.#scope.report,
      slotIndex: this.slot.index,
      jobDir: this.#dir.root,
      accepting: () => this.#d.hooks.accepting?.() ?? true,
    });
    if (result.outcome === 'claimed') this.#job = result.job;
    return result.outcome;
  }

  // ── run ───────────────────────────────────────────────────────────────────────────────────────

  /** After a successful {@link claim}: run the job to its end in the background. */
  run(): Promise<RunOutcome> {
    this.#done ??= this.#guard(() => this.#runFromClaim());
    return this.#done;
  }

  /** Prepare and start (`job-start.ts`), then supervise and report. */
  async #runFromClaim(): Promise<RunOutcome> {
    const starting = { job: this.#job!, template: this.#template!, gpu: this.#gpu() };
    this.#phase = 'preparing';
    const prepared = await prepareJob(this.#scope, starting);
    if (prepared === undefined) return 'released';
    this.#phase = 'starting';
    const child = await startJob(this.#scope, { ...starting, ...prepared }, () => this.#stopReason);
    if (typeof child === 'string') return child;
    return this.#superviseAndReport(child, runSettingsOf(prepared.prepared));
  }

  /** Watch the child (`job-supervise.ts`) until it ends, then report the job (`job-finish.ts`). */
  async #superviseAndReport(child: RunningChild, run: RunSettings): Promise<RunOutcome> {
    this.#phase = 'running';
    this.#startedAt = child.startedAtMs;
    this.#d.hooks.onStarted?.(this, child.pid);
    this.log.info({ pid: child.pid, origin: child.origin }, child.origin === 'attached' ? 're-attached to the running child' : 'child started');
    // After a re-attach the logs hold what the child printed meanwhile; progress goes on from the
    // highest value this attempt reported, never below it.
    const resume = child.origin === 'attached' ? { lastReported: this.#d.journal.get(this.jobPk)?.lastProgress ?? null } : undefined;
    const { supervisor, ended } = superviseChild(child, { ...run, resume }, {
      jobPk: this.jobPk,
      api: this.#d.api,
      journal: this.#d.journal,
      log: this.log,
      killGraceMs: this.#d.options.killGraceMs,
      progressIntervalMs: this.#d.options.progressIntervalMs,
      cancelCheckIntervalMs: this.#d.options.cancelCheckIntervalMs,
      useWebSocket: this.#d.useWebSocket,
      // Nothing more is reported for a job that is no longer ours, or fenced (by us or its wrapper).
      mayReport: () => this.#lost === undefined && this.#stopReason !== 'fenced' && !(this.#d.leases?.lapsed(this.jobPk) ?? false),
      onProgress: (update) => {
        this.#progress = update.progress;
        this.#d.hooks.onProgress?.(this, update);
      },
      onLost: (reason) => {
        this.#lost = reason;
      },
      logs: this.#d,
    });
    this.#supervisor = supervisor;
    if (this.#stopReason) void supervisor.stop(this.#stopReason);
    let result = await ended;
    this.#d.leases?.release(this.jobPk);
    if (result.stopReason === undefined && fencedByWrapper(child.dir)) {
      // The wrapper stopped it: the agent did not renew the lease in time (frozen, or cut off).
      this.log.error({}, 'the job was stopped by its wrapper because its lease lapsed; it will run again elsewhere');
      this.#stopReason = 'fenced';
      result = { ...result, stopReason: 'fenced' };
    }
    failPoint('child:after-exit');
    this.#d.journal.record(this.jobPk, { exitCode: result.exit.code, exitSignal: result.exit.signal });
    if (result.survivors.length > 0) {
      this.log.error({ survivors: result.survivors.map((p) => p.pid) }, 'processes of the job survived SIGKILL');
    }
    this.log.info({ exit: describeExit(result.exit), stopReason: result.stopReason, forced: result.forced, strays: result.strays }, 'child ended');
    this.#phase = 'reporting';
    return reportEnd(this.#scope, result, run, this.#lost);
  }

  // ── recovery entry points ─────────────────────────────────────────────────────────────────────

  /** Re-attached to a child that still runs: supervise it as if nothing happened. */
  resumeRunning(child: RunningChild, job: JobJson, template: TemplateJson | undefined, run: RunSettings): Promise<RunOutcome> {
    this.#job = job;
    this.#template = template;
    this.#dir = child.dir;
    this.#d.leases?.adopt(this.jobPk, child.dir);
    this.#done ??= this.#guard(() => this.#superviseAndReport(child, run));
    return this.#done;
  }

  /** The child exited while the agent was down, with a known status: upload and report it. */
  resumeCollect(exit: ExitResult, outputTypes: Readonly<Record<string, string>>): Promise<RunOutcome> {
    return this.#resume(async (s) => {
      s.deps.journal.record(this.jobPk, { exitCode: exit.code, exitSignal: exit.signal });
      const missing = await collectOutputs(s, outputTypes, false);
      s.deps.journal.transition(this.jobPk, 'uploading');
      return uploadAndFinish(s, unsupervisedExit(exit), undefined, missing);
    });
  }

  /** Uploads were under way: finish them, then report with the recorded exit status. */
  resumeUpload(exit: ExitResult): Promise<RunOutcome> {
    return this.#resume((s) => uploadAndFinish(s, unsupervisedExit(exit), undefined, []));
  }

  /** The finish decision is journalled: deliver it again (then reset+release if it was a requeue). */
  resumeFinish(error: string | null, requeue: boolean): Promise<RunOutcome> {
    return this.#resume((s) => deliver(s, error, requeue, requeue ? 'requeued' : error === null ? 'success' : 'error'));
  }

  /** Report an error for a job whose child is gone; requeue it unless it is poisoned. */
  resumeFail(error: string, requeue: boolean): Promise<RunOutcome> {
    return this.#resume((s) => finishWith(s, error, requeue, requeue ? 'requeued' : 'error'));
  }

  /** Cancelled or taken away while the agent was down: stop what runs, finish silently. */
  resumeCleanup(child: RunningChild | undefined, fromState: JobState): Promise<RunOutcome> {
    return this.#resume((s) => cleanUpLost(s, child, fromState));
  }

  /** Reset (if needed) and release a job whose finish was delivered as a requeue. */
  resumeRelease(fromState: 'finishing' | 'releasing', requeue: boolean): Promise<RunOutcome> {
    return this.#resume((s) => releaseFinished(s, fromState, requeue));
  }

  /** Continue a journalled job in its reporting phase (once). */
  #resume(body: (s: JobScope) => Promise<RunOutcome>): Promise<RunOutcome> {
    this.#done ??= this.#guard(() => {
      this.#phase = 'reporting';
      return body(this.#scope);
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

  /** What the phase modules see of this job; `dir` is this runner's. */
  #createScope(): JobScope {
    const d = this.#d;
    const report: ReportContext = {
      jobPk: this.jobPk,
      api: d.api,
      journal: d.journal,
      log: this.log,
      signal: this.#giveUp.signal,
      uploadAttempts: UPLOAD_ATTEMPTS,
      onUploaded: (o) => d.hooks.onUploaded?.(o.size),
      onUploadFailed: () => d.hooks.onUploadFailed?.(),
    };
    const runner = this; // the accessors below are the runner's, not the scope object's
    return {
      jobPk: this.jobPk,
      deps: d,
      log: this.log,
      report,
      get dir() {
        return runner.#dir;
      },
      set dir(dir: JobDir) {
        runner.#dir = dir;
      },
      removeDir: () => this.#removeDir(),
      endWith: (outcome, error) => this.#endWith(outcome, error),
    };
  }

  #gpu(): string | null {
    const value = cudaVisibleDevices(this.slot);
    return value === '' ? null : value;
  }

  async #removeDir(): Promise<void> {
    if (this.#d.options.keepJobDirs) return;
    await removeJobDir(this.#dir).catch((err: unknown) => this.log.warn({ err: String(err) }, 'could not remove the job directory'));
  }

  #endWith(outcome: RunOutcome, error: string | null): void {
    if (this.#phase === 'ended') return;
    this.#phase = 'ended';
    this.log.info({ outcome, error: error === null ? undefined : error.split('\n')[0] }, 'job left this node');
    this.#d.hooks.onEnded?.(this, outcome, error);
  }

  /** Never let a bug escape as an unhandled rejection: log it; the journal lets recovery finish the job. */
  async #guard(body: () => Promise<RunOutcome>): Promise<RunOutcome> {
    try {
      const outcome = await body();
      if (outcome === 'interrupted' || outcome === 'released' || outcome === 'lost') this.#endWith(outcome, null);
      return outcome;
    } catch (err) {
      this.log.error({ err }, 'job runner failed unexpectedly; the journal keeps its state for recovery');
      this.#endWith('interrupted', err instanceof Error ? err.message : String(err));
      return 'interrupted';
    }
  }
}
