/**
 * The jobs in flight: one {@link JobRunner} per job, each holding its slot until the job has left
 * this agent. New runners come from the poll loop (a claimed candidate) or from recovery (a journalled
 * job that continues); both end the same way, releasing their slot.
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import type { JobDir } from '../child/job-dir.js';
import type { NodeApi } from '../ports.js';
import type { Slots, SlotSpec } from '../slots/slots.js';
import type { ClaimOutcome } from './claim.js';
import type { JobLogger, JobsShared, RunOutcome } from './context.js';
import { JobRunner } from './runner.js';

export interface JobsInFlightContext extends JobsShared {
  readonly slots: Slots;
  /** The agent's logger; each job logs through a child of it with its pk and slot. */
  readonly log: JobLogger;
  /** A slot began or stopped running a job (readiness: is a slot free?). */
  onSlotsChanged(): void;
}

export class JobsInFlight {
  readonly #ctx: JobsInFlightContext;
  /** What each job's context takes over from the agent. */
  readonly #shared: JobsShared;
  readonly #runners = new Map<number, JobRunner>();

  constructor(ctx: JobsInFlightContext) {
    this.#ctx = ctx;
    const { slots: _slots, log: _log, onSlotsChanged: _onSlotsChanged, ...shared } = ctx;
    this.#shared = shared;
  }

  get size(): number {
    return this.#runners.size;
  }

  all(): JobRunner[] {
    return [...this.#runners.values()];
  }

  /** The runner of job `jobPk`, if it is in flight. */
  get(jobPk: number): JobRunner | undefined {
    return this.#runners.get(jobPk);
  }

  /**
   * Whether a job in flight reports as node `nodePk`: a job beyond the plan may report as the node a
   * slot of the plan registers again (`Slots.setNodeBusy`).
   */
  reportsAs(nodePk: number): boolean {
    for (const runner of this.#runners.values()) if (runner.api.nodePk === nodePk) return true;
    return false;
  }

  /** Runners whose child runs now. */
  withChild(): JobRunner[] {
    return this.all().filter((r) => r.status.pid !== null);
  }

  /** Claim `job` into `slot` (which the loop took); on `claimed` the job runs and owns the slot. */
  async claim(slot: SlotSpec, job: JobJson, template: TemplateJson, api: NodeApi): Promise<ClaimOutcome> {
    // An earlier run of the job is still leaving (it journalled `done` and now removes the job's
    // directory): a new run now would make that directory while the old one removes it. A requeued
    // job is released before its entry is closed, so it is on offer again by then; nothing is sent
    // for it now, and a later poll claims it once the runner has left. (The journal's own check, in
    // `claimJob`, would only see the closed entry.)
    if (this.#runners.has(job.pk)) return 'lost';
    const runner = this.#create(job.pk, slot, api);
    const claimed = await runner.claim(job, template);
    if (claimed.outcome !== 'claimed') {
      if (claimed.outcome === 'lost') this.#ctx.metrics.acquireRaces.inc();
      return claimed.outcome;
    }
    this.#ctx.metrics.jobsAcquired.inc();
    this.#ctx.emit('acquired', { jobPk: job.pk, slot: slot.index });
    this.#track(runner, runner.run(claimed.job, template));
    return 'claimed';
  }

  /**
   * Recovery: take `slot` for a journalled job and return the runner that continues it; the caller
   * starts it with one of its `resume*` methods right away (synchronously, in the same tick). With
   * `beyond-plan`, when the plan has no free slot for the job, the job gets a slot of its own that
   * takes no new job and leaves when it ends ({@link Slots.addBeyondPlan}). `dir` is the job directory
   * its journal entry owns.
   */
  adopt(jobPk: number, where: SlotSpec | 'beyond-plan', api: NodeApi, dir: JobDir): JobRunner {
    const slots = this.#ctx.slots;
    const slot = where === 'beyond-plan' ? slots.addBeyondPlan(jobPk) : slots.take(where.index, jobPk);
    const runner = this.#create(jobPk, slot, api, dir);
    queueMicrotask(() => {
      const done = runner.done;
      if (done) this.#track(runner, done);
      else this.#ctx.slots.release(slot.index);
    });
    return runner;
  }

  /** Stop every running job now (`shutdown`: reported so it runs elsewhere) and wait until all left. */
  async stopAll(reason: 'shutdown' | 'fenced'): Promise<void> {
    const runners = this.all();
    for (const runner of runners) {
      // One runner's failure (a bug) must not leave the jobs after it running.
      try {
        runner.stop(reason);
      } catch (err) {
        this.#ctx.log.error({ err, job: runner.jobPk }, 'could not stop a job');
      }
    }
    if (reason === 'shutdown') await Promise.allSettled(runners.map((r) => r.done));
  }

  /** Give up reporting (the agent exits at once); the journal keeps what is owed. */
  abandonAll(): void {
    for (const runner of this.#runners.values()) runner.abandonReporting();
  }

  #track(runner: JobRunner, done: Promise<RunOutcome>): void {
    const { slots, metrics } = this.#ctx;
    this.#runners.set(runner.jobPk, runner);
    slots.assign(runner.slot.index, runner.jobPk);
    metrics.slotsBusy.set(slots.running);
    this.#ctx.onSlotsChanged();
    void done.finally(() => {
      // Gone from the jobs in flight before its slot is released: the release wakes a slot whose node
      // the job reported as ({@link reportsAs}), and that slot must find the node free then.
      if (this.#runners.get(runner.jobPk) === runner) this.#runners.delete(runner.jobPk);
      slots.release(runner.slot.index);
      metrics.slotsBusy.set(slots.running);
      this.#ctx.onSlotsChanged();
    });
  }

  #create(jobPk: number, slot: SlotSpec, api: NodeApi, dir?: JobDir): JobRunner {
    return new JobRunner(this.#shared, { jobPk, slot, api, dir, log: this.#ctx.log.child({ job: jobPk, slot: slot.index }) });
  }
}
