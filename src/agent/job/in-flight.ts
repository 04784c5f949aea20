/**
 * The jobs in flight: one {@link JobRunner} per job, each holding its slot until the job has left
 * this agent. New runners come from the poll loop (a claimed candidate) or from recovery (a journalled
 * job that continues); both end the same way, releasing their slot.
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { JobRunner, type RunOutcome, type RunnerLogger } from './runner.js';
import type { JobLeases } from './leases.js';
import type { ClaimOutcome } from '../poll/loop.js';
import type { AgentMetrics } from '../metrics.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { LiveLogSettings } from '../logs/live-log-stream.js';
import type { ExecutorPort, JournalPort, NodeApi } from '../ports.js';
import type { ProgressUpdate } from '../progress/update.js';
import type { Slots, SlotSpec } from '../slots/slots.js';

/** What the agent hears about its jobs. */
export interface RunnersEvents {
  acquired(e: { jobPk: number; slot: number }): void;
  started(e: { jobPk: number; slot: number; pid: number }): void;
  progressed(e: { jobPk: number; progress: number; data: Record<string, unknown> }): void;
  finished(e: { jobPk: number; slot: number; outcome: RunOutcome; error: string | null }): void;
}

export interface RunnersContext {
  slots: Slots;
  journal: JournalPort;
  executor: ExecutorPort;
  options: ResolvedAgentOptions;
  useWebSocket: boolean;
  /** Stream jobs' live logs (src/agent/logs/); null when the server lacks them. */
  liveLog: LiveLogSettings | null;
  log: RunnerLogger;
  metrics: AgentMetrics;
  events: RunnersEvents;
  /** Whether the agent takes new work (checked again after acquire and after preparation). */
  accepting(): boolean;
  /** A job that failed preparation: the poll loop skips it for a while. */
  skip(jobPk: number, reason: string): void;
  /** A slot began or stopped running a job (readiness: is a slot free?). */
  onSlotsChanged?(): void;
  /** The children's leases, when the server has lost-node recovery. */
  leases?: JobLeases | undefined;
}

export class Runners {
  readonly #ctx: RunnersContext;
  readonly #runners = new Map<number, JobRunner>();

  constructor(ctx: RunnersContext) {
    this.#ctx = ctx;
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

  /** Runners whose child runs now. */
  withChild(): JobRunner[] {
    return this.all().filter((r) => r.status.pid !== null);
  }

  /** Claim `job` into `slot` (which the loop took); on `claimed` the job runs and owns the slot. */
  async claim(slot: SlotSpec, job: JobJson, template: TemplateJson, api: NodeApi): Promise<ClaimOutcome> {
    const runner = this.#create(job.pk, slot, api);
    const outcome = await runner.claim(job, template);
    if (outcome !== 'claimed') {
      if (outcome === 'lost') this.#ctx.metrics.acquireRaces.inc();
      return outcome;
    }
    this.#ctx.metrics.jobsAcquired.inc();
    this.#ctx.events.acquired({ jobPk: job.pk, slot: slot.index });
    this.#track(runner, runner.run());
    return 'claimed';
  }

  /**
   * Recovery: take `slot` for a journalled job and return the runner that continues it; the caller
   * starts it with one of its `resume*` methods right away (synchronously, in the same tick).
   */
  adopt(jobPk: number, slot: SlotSpec, api: NodeApi): JobRunner {
    this.#ctx.slots.take(slot.index, jobPk);
    const runner = this.#create(jobPk, slot, api);
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
    for (const runner of runners) runner.stop(reason);
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
    this.#ctx.onSlotsChanged?.();
    void done.finally(() => {
      this.#runners.delete(runner.jobPk);
      slots.release(runner.slot.index);
      metrics.slotsBusy.set(slots.running);
      this.#ctx.onSlotsChanged?.();
    });
  }

  #create(jobPk: number, slot: SlotSpec, api: NodeApi): JobRunner {
    const { options, metrics, events } = this.#ctx;
    return new JobRunner(jobPk, {
      api,
      journal: this.#ctx.journal,
      executor: this.#ctx.executor,
      options,
      useWebSocket: this.#ctx.useWebSocket,
      liveLog: this.#ctx.liveLog,
      leases: this.#ctx.leases,
      slot,
      log: this.#ctx.log.child({ job: jobPk, slot: slot.index }),
      hooks: {
        accepting: () => this.#ctx.accepting(),
        onSkip: (pk, reason) => this.#ctx.skip(pk, reason),
        onStarted: (r, pid) => events.started({ jobPk: r.jobPk, slot: r.slot.index, pid }),
        onProgress: (r, update: ProgressUpdate) => events.progressed({ jobPk: r.jobPk, progress: update.progress, data: update.data }),
        onUploaded: (bytes) => metrics.uploadBytes.inc(bytes),
        onUploadFailed: () => metrics.uploadFailures.inc(),
        onEnded: (r, outcome, error) => {
          metrics.jobsEnded.inc({ outcome });
          events.finished({ jobPk: r.jobPk, slot: r.slot.index, outcome, error });
        },
      },
    });
  }
}
