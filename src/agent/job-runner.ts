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
import { isClientError } from '../client/errors.js';
import { phaseOf } from '../protocol/phase.js';
import type { JobJson, TemplateJson } from '../protocol/wire.js';
import type { LossReason } from './cancel-watch.js';
import { finishErrorText, describeExit } from './child/exit-text.js';
import { createJobDir, jobDirPaths, jobJsonContent, removeJobDir, writeJobJson, type JobDir } from './child/job-dir.js';
import type { RunningChild } from './child/running-child.js';
import { spawnJob } from './child/spawn.js';
import { ChildSupervisor, type StopReason, type SupervisedExit } from './child/supervisor.js';
import type { ExitResult } from './child/wrapper.js';
import { failPoint } from './fail-points.js';
import { isJobEdge, type JobState } from './journal/states.js';
import { claimJob, releaseUnstartedJob } from './job-claim.js';
import { downloadInputs } from './job-inputs.js';
import { deliverFinish, resetAndRelease, uploadOutputs, type ReportContext } from './job-report.js';
import { superviseChild } from './job-supervise.js';
import type { ClaimOutcome } from './loop.js';
import type { PreparedJob } from './executors/types.js';
import { runSettingsOf, type RunOutcome, type RunnerDeps, type RunnerLogger, type RunSettings } from './job-types.js';
import { writeJobLog } from './outputs/job-log.js';
import { scanOutputs } from './outputs/scan.js';
import { cudaVisibleDevices, type SlotSpec } from './slots.js';
import { childStartIdentity } from './child-identity.js';

export type { RunOutcome, RunnerDeps, RunnerHooks, RunnerLogger, RunSettings } from './job-types.js';
export { runSettingsOf } from './job-types.js';

const SHUTDOWN_ERROR = 'The node is shutting down; the job will run again elsewhere.';
const UPLOAD_ATTEMPTS = 3;

export class JobRunner {
  readonly jobPk: number;
  readonly slot: SlotSpec;
  readonly log: RunnerLogger;
  readonly #d: RunnerDeps;
  /** Aborted when the agent exits without waiting: reporting loops give up, the journal keeps the rest. */
  readonly #giveUp = new AbortController();
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

  get #report(): ReportContext {
    return {
      jobPk: this.jobPk,
      api: this.#d.api,
      journal: this.#d.journal,
      log: this.log,
      signal: this.#giveUp.signal,
      uploadAttempts: UPLOAD_ATTEMPTS,
      onUploaded: (o) => this.#d.hooks.onUploaded?.(o.size),
      onUploadFailed: () => this.#d.hooks.onUploadFailed?.(),
    };
  }

  // ── claim ─────────────────────────────────────────────────────────────────────────────────────

  /** Acquire the job and confirm it is ours (`job-claim.ts`). */
  async claim(job: JobJson, template: TemplateJson): Promise<ClaimOutcome> {
    this.#template = template;
    const result = await claimJob(job, template, {
      report: this.#report,
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

  async #runFromClaim(): Promise<RunOutcome> {
    const prepared = await this.#prepare();
    if (prepared === undefined) return 'released';
    const settings = runSettingsOf(prepared);
    this.#outputTypes = settings.outputTypes;
    const child = await this.#start(prepared);
    if (typeof child === 'string') return child;
    return this.#superviseAndReport(child, settings);
  }

  #inputPaths: Record<string, string> = {};

  async #prepare(): Promise<PreparedJob | undefined> {
    const { journal, executor } = this.#d;
    const job = this.#job!;
    const template = this.#template!;
    this.#phase = 'preparing';
    journal.transition(this.jobPk, 'preparing', { jobDir: this.#dir.root });
    try {
      this.#dir = await createJobDir(this.#d.options.workDir, this.jobPk);
      this.#inputPaths = await downloadInputs(this.#d.api, job, this.#dir, this.#giveUp.signal);
      const chosen = executor.executorFor(template.executor_class);
      if (!chosen) throw new Error(executor.canRun(template) ?? `no executor for ${template.executor_class}`);
      const prepared = chosen.prepare(job, template, {
        dir: this.#dir,
        gpu: this.#gpu(),
        inputPaths: this.#inputPaths,
        serverUrl: this.#d.options.serverUrl,
        nodePk: this.#d.api.nodePk!,
      });
      failPoint('preparing:after-http');
      if (this.#d.hooks.accepting && !this.#d.hooks.accepting()) throw new Error('the agent is draining');
      return prepared;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.log.warn({ err: reason }, 'preparation failed; releasing the job so that another node can run it');
      this.#d.hooks.onSkip?.(this.jobPk, reason);
      await releaseUnstartedJob(this.#report);
      await this.#removeDir();
      return undefined;
    }
  }

  async #start(prepared: PreparedJob): Promise<RunningChild | RunOutcome> {
    const { api, journal } = this.#d;
    const job = this.#job!;
    this.#phase = 'starting';
    journal.transition(this.jobPk, 'starting');
    try {
      await api.startJob(this.jobPk);
    } catch (err) {
      let landed = false;
      if (isClientError(err) && err.ambiguous) {
        landed = await api.checkLanded('start', this.jobPk).then((r) => r.landed, () => false);
      }
      if (!landed) {
        const nodeBusy = isClientError(err, 'node-busy');
        this.log[nodeBusy ? 'error' : 'warn'](
          { err: err instanceof Error ? err.message : String(err) },
          nodeBusy ? 'start refused: the server says this node still works another job; releasing this one' : 'start refused; releasing the job',
        );
        await releaseUnstartedJob(this.#report);
        await this.#removeDir();
        return 'released';
      }
    }
    failPoint('starting:after-http');
    if (this.#stopReason === 'shutdown' || this.#stopReason === 'fenced') {
      // Stopped while the start was in flight: report it so it runs elsewhere.
      return this.#finishAndRequeue(SHUTDOWN_ERROR);
    }
    await writeJobJson(this.#dir, jobJsonContent(this.#dir, job, this.#template!, prepared.parameters, this.#inputPaths));
    let child: RunningChild;
    try {
      child = await spawnJob(prepared.spec);
    } catch (err) {
      const error = `Could not start the command: ${err instanceof Error ? err.message : String(err)}`;
      this.log.error({ err: error }, 'spawn failed');
      journal.transition(this.jobPk, 'finishing', { finish: { error } });
      return this.#deliver(error, false, 'error');
    }
    failPoint('child:after-spawn');
    journal.transition(this.jobPk, 'running', { pid: child.pid, pidStart: childStartIdentity(child.startTime) });
    return child;
  }

  // ── supervise ─────────────────────────────────────────────────────────────────────────────────

  async #superviseAndReport(child: RunningChild, run: RunSettings): Promise<RunOutcome> {
    this.#phase = 'running';
    this.#startedAt = child.startedAtMs;
    this.#d.hooks.onStarted?.(this, child.pid);
    this.log.info({ pid: child.pid, origin: child.origin }, child.origin === 'attached' ? 're-attached to the running child' : 'child started');
    const { supervisor, ended } = superviseChild(child, run, {
      jobPk: this.jobPk,
      api: this.#d.api,
      journal: this.#d.journal,
      log: this.log,
      killGraceMs: this.#d.options.killGraceMs,
      progressIntervalMs: this.#d.options.progressIntervalMs,
      cancelCheckIntervalMs: this.#d.options.cancelCheckIntervalMs,
      useWebSocket: this.#d.useWebSocket,
      // Nothing more is reported for a job that is no longer ours, or while fenced.
      mayReport: () => this.#lost === undefined && this.#stopReason !== 'fenced',
      onProgress: (update) => {
        this.#progress = update.progress;
        this.#d.hooks.onProgress?.(this, update);
      },
      onLost: (reason) => {
        this.#lost = reason;
      },
    });
    this.#supervisor = supervisor;
    if (this.#stopReason) void supervisor.stop(this.#stopReason);
    const result = await ended;
    failPoint('child:after-exit');
    this.#d.journal.record(this.jobPk, { exitCode: result.exit.code, exitSignal: result.exit.signal });
    if (result.survivors.length > 0) {
      this.log.error({ survivors: result.survivors.map((p) => p.pid) }, 'processes of the job survived SIGKILL');
    }
    this.log.info({ exit: describeExit(result.exit), stopReason: result.stopReason, forced: result.forced, strays: result.strays }, 'child ended');
    return this.#reportEnd(result, run.timeLimitMs);
  }

  // ── report ────────────────────────────────────────────────────────────────────────────────────

  async #reportEnd(result: SupervisedExit, timeLimitMs: number | undefined): Promise<RunOutcome> {
    const { journal } = this.#d;
    this.#phase = 'reporting';
    if (this.#lost !== undefined) {
      // Cancelled or taken away: nothing is uploaded; finish is the silent clean-up of current_job.
      // The error is sent anyway: should the server still show the job running by us, it must not
      // turn into a success without outputs.
      const error = this.#lost === 'cancelled' ? 'Cancelled' : 'Taken away from this node';
      journal.transition(this.jobPk, 'finishing', { finish: { error } });
      return this.#deliver(error, false, this.#lost === 'cancelled' ? 'cancelled' : 'lost');
    }
    if (result.stopReason === 'fenced') {
      const error = 'The node lost contact with the server and stopped the job; it will run again elsewhere.';
      journal.transition(this.jobPk, 'finishing', { finish: { error } });
      return this.#deliverAfterFence(error);
    }
    if (result.stopReason === 'shutdown') {
      // Only the log goes up (reset will remove it with the outputs on the reference; it helps whoever looks now).
      await this.#registerOutputs({}, true);
      journal.transition(this.jobPk, 'uploading');
      await uploadOutputs(this.#report);
      return this.#finishAndRequeue(SHUTDOWN_ERROR);
    }
    await this.#registerOutputs(this.#outputTypes, false);
    journal.transition(this.jobPk, 'uploading');
    return this.#uploadAndFinish(result, timeLimitMs);
  }

  #outputTypes: Readonly<Record<string, string>> = {};

  /** Declared outputs the child did not leave (a success without them is an error). */
  #missing: string[] = [];

  async #registerOutputs(outputTypes: Readonly<Record<string, string>>, logOnly: boolean): Promise<void> {
    const { journal } = this.#d;
    if (!logOnly) {
      try {
        const scan = await scanOutputs(this.#dir.outputDir, outputTypes);
        for (const file of scan.files) journal.registerOutput(this.jobPk, file);
        for (const skipped of scan.skipped) this.log.warn({ file: skipped.name, reason: skipped.reason }, 'not uploading a file of the output directory');
        this.#missing = scan.missing;
      } catch (err) {
        this.log.error({ err: String(err) }, 'could not collect the outputs');
        this.#missing = ['(the output directory could not be read)'];
      }
    }
    try {
      journal.registerOutput(this.jobPk, await writeJobLog(this.#dir));
    } catch (err) {
      this.log.error({ err: String(err) }, 'could not build the log output');
    }
  }

  /** Upload, then finish: success only when every output is on the server. */
  async #uploadAndFinish(result: SupervisedExit | undefined, timeLimitMs: number | undefined, exit?: ExitResult): Promise<RunOutcome> {
    const failed = await uploadOutputs(this.#report);
    if (this.#giveUp.signal.aborted) return 'interrupted';
    let error: string | null;
    if (result) {
      error = (await finishErrorText(result, this.#dir, { timeLimitMs })) ?? null;
    } else {
      const ended = exit ?? { code: null, signal: null, source: 'lost' as const };
      error = (await finishErrorText({ exit: ended, stopReason: undefined, forced: false, strays: 0, survivors: [] }, this.#dir)) ?? null;
    }
    if (error === null && this.#missing.length > 0) {
      error = `The command succeeded but did not leave its declared output(s): ${this.#missing.join(', ')}`;
    }
    if (error === null && failed.length > 0) {
      error = `The job succeeded but ${failed.length} output(s) could not be uploaded: ${failed
        .map((o) => `${o.name} (${o.type}): ${o.lastError ?? 'failed'}`)
        .join('; ')}`;
    }
    this.#d.journal.transition(this.jobPk, 'finishing', { finish: { error } });
    return this.#deliver(error, false, error === null ? 'success' : 'error');
  }

  /** Finish with an error, then reset and release so that the job runs again. */
  async #finishAndRequeue(error: string): Promise<RunOutcome> {
    this.#d.journal.transition(this.jobPk, 'finishing', { finish: { error } });
    return this.#deliver(error, true, 'requeued');
  }

  /** Deliver the journalled finish; then done, or reset+release when `requeue`. */
  async #deliver(error: string | null, requeue: boolean, outcome: RunOutcome): Promise<RunOutcome> {
    const { journal } = this.#d;
    const finished = await deliverFinish(this.#report, error);
    if (!finished.delivered) return 'interrupted';
    const job = finished.job;
    // A job the server shows cancelled or taken away was not ours to requeue or report.
    if (job && (phaseOf(job) === 'CANCELLED' || job.node !== this.#d.api.nodePk) && outcome !== 'cancelled' && outcome !== 'lost') {
      outcome = phaseOf(job) === 'CANCELLED' ? 'cancelled' : 'lost';
      requeue = false;
    }
    if (requeue && job && phaseOf(job) === 'ERRORED') {
      journal.transition(this.jobPk, 'releasing');
      if (!(await resetAndRelease(this.#report))) return 'interrupted';
    }
    journal.transition(this.jobPk, 'done');
    await this.#removeDir();
    this.#endWith(outcome, error);
    return outcome;
  }

  /** After self-fencing: wait for the server, then report consistently (DESIGN §3). */
  async #deliverAfterFence(error: string): Promise<RunOutcome> {
    // deliverFinish retries until the server answers. If lost-node recovery aborted the job
    // meanwhile, the finish is the silent clean-up; if not, it errors the job and we requeue it.
    const outcome = await this.#deliver(error, true, 'fenced');
    return outcome === 'requeued' ? 'fenced' : outcome;
  }

  // ── recovery entry points ─────────────────────────────────────────────────────────────────────

  /** Re-attached to a child that still runs: supervise it as if nothing happened. */
  resumeRunning(child: RunningChild, job: JobJson, template: TemplateJson | undefined, run: RunSettings): Promise<RunOutcome> {
    this.#job = job;
    this.#template = template;
    this.#dir = child.dir;
    this.#outputTypes = run.outputTypes;
    this.#done ??= this.#guard(() => this.#superviseAndReport(child, run));
    return this.#done;
  }

  /** The child exited while the agent was down, with a known status: upload and report it. */
  resumeCollect(exit: ExitResult, outputTypes: Readonly<Record<string, string>>): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      this.#d.journal.record(this.jobPk, { exitCode: exit.code, exitSignal: exit.signal });
      this.#outputTypes = outputTypes;
      await this.#registerOutputs(outputTypes, false);
      this.#d.journal.transition(this.jobPk, 'uploading');
      return this.#uploadAndFinish(undefined, undefined, exit);
    });
    return this.#done;
  }

  /** Uploads were under way: finish them, then report with the recorded exit status. */
  resumeUpload(exit: ExitResult): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      return this.#uploadAndFinish(undefined, undefined, exit);
    });
    return this.#done;
  }

  /** The finish decision is journalled: deliver it again (then reset+release if it was a requeue). */
  resumeFinish(error: string | null, requeue: boolean): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      return this.#deliver(error, requeue, requeue ? 'requeued' : error === null ? 'success' : 'error');
    });
    return this.#done;
  }

  /** Report an error for a job whose child is gone; requeue it unless it is poisoned. */
  resumeFail(error: string, requeue: boolean): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      this.#d.journal.transition(this.jobPk, 'finishing', { finish: { error } });
      return this.#deliver(error, requeue, requeue ? 'requeued' : 'error');
    });
    return this.#done;
  }

  /** Cancelled or taken away while the agent was down: stop what runs, finish silently. */
  resumeCleanup(child: RunningChild | undefined, fromState: JobState): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      if (child) {
        const supervisor = new ChildSupervisor(child, { killGraceMs: this.#d.options.killGraceMs });
        await supervisor.stop('cancelled');
      }
      if (isJobEdge(fromState, 'finishing')) {
        this.#d.journal.transition(this.jobPk, 'finishing', { finish: { error: 'Cancelled' } });
        return this.#deliver('Cancelled', false, 'cancelled');
      }
      // No journal edge leads to finishing from here (the finish belongs to an earlier attempt):
      // clear current_job with the silent finish, then close the entry.
      const finished = await deliverFinish(this.#report, 'Cancelled');
      if (!finished.delivered) return 'interrupted';
      if (fromState !== 'finishing') this.#d.journal.abandon(this.jobPk, 'cancelled or taken away while the agent was down');
      else this.#d.journal.transition(this.jobPk, 'done');
      await this.#removeDir();
      this.#endWith('cancelled', 'Cancelled');
      return 'cancelled';
    });
    return this.#done;
  }

  /** Reset (if needed) and release a job whose finish was delivered as a requeue. */
  resumeRelease(fromState: 'finishing' | 'releasing', requeue: boolean): Promise<RunOutcome> {
    this.#done ??= this.#guard(async () => {
      this.#phase = 'reporting';
      if (fromState === 'finishing' && !requeue) {
        // The finish landed and nothing is to be given back: only the journal's result was missing.
        this.#d.journal.transition(this.jobPk, 'done');
        await this.#removeDir();
        const error = this.#d.journal.get(this.jobPk)?.finish?.error ?? null;
        this.#endWith(error === null ? 'success' : 'error', error);
        return error === null ? 'success' : 'error';
      }
      if (fromState === 'finishing') this.#d.journal.transition(this.jobPk, 'releasing');
      if (!(await resetAndRelease(this.#report))) return 'interrupted';
      this.#d.journal.transition(this.jobPk, 'done');
      await this.#removeDir();
      this.#endWith('requeued', null);
      return 'requeued';
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
