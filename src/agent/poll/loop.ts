/**
 * The poll loop (docs/ARCHITECTURE.md, "One job"; wake-up in "Extensions"). One loop for all slots:
 *
 * 1. wait until a slot is free ({@link Slots.onFree}) and the agent accepts work;
 * 2. list the queue with the reference poll filter — with `X-UFDL-Wait` when the server offers
 *    wake-up, so an empty answer is held until a job arrives, and then less the jobs it skips;
 * 3. walk the candidates in pk order: skip those that failed recently, evaluate the rest (template
 *    cached by pk, executor allow-list, `canRun`) and claim the first that fits (acquire, re-read,
 *    confirm `node == self`); a claimed job runs in the background and keeps its slot;
 * 4. nothing claimed: wait the jittered idle schedule (not after a held wake-up poll that came back
 *    empty: the server already waited; nor after fresh skips that the next poll leaves out: it goes
 *    at once, once for each such job); a server error waits the separate error back-off.
 *
 * A watchdog notices an iteration that stopped making progress (a hung call, a lost promise), logs it
 * loudly and abandons that iteration so the next one starts; every step of an iteration listens to
 * the iteration's abort signal.
 */
import { abortable } from '../../client/abortable.js';
import type { JobJson } from '../../protocol/wire.js';
import type { PrepareErrorCode } from '../executors/errors.js';
import type { ClaimOutcome } from '../job/claim.js';
import type { LogPort } from '../ports.js';
import { Schedule, sleepUnlessAborted } from '../timing.js';
import type { SlotSpec, Slots } from '../slots/slots.js';

/** Jobs that failed evaluation or preparation, skipped until their time is up. */
export class SkipList {
  readonly #until = new Map<number, { untilMs: number; reason: string }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(jobPk: number, forMs: number, reason: string): void {
    this.#until.set(jobPk, { untilMs: this.#now() + forMs, reason });
  }

  has(jobPk: number): boolean {
    const entry = this.#until.get(jobPk);
    if (!entry) return false;
    if (entry.untilMs > this.#now()) return true;
    this.#until.delete(jobPk);
    return false;
  }

  get size(): number {
    return this.#until.size;
  }

  /** The jobs skipped now, lowest pk (head of the queue) first; those whose time is up are forgotten. */
  current(): number[] {
    const now = this.#now();
    for (const [jobPk, entry] of this.#until) if (entry.untilMs <= now) this.#until.delete(jobPk);
    return [...this.#until.keys()].sort((a, b) => a - b);
  }

  entries(): { jobPk: number; untilMs: number; reason: string }[] {
    return [...this.#until].map(([jobPk, e]) => ({ jobPk, ...e }));
  }
}

/**
 * Whether a candidate fits this node; if not, the sentence (what the server is told as the job's
 * waiting reason) and, for a refusal of the template by this node's executors, its agent code
 * (docs/ERRORS.md, "Agent codes"), which the log line carries.
 */
export type Evaluation = { ok: true } | { ok: false; reason: string; code?: PrepareErrorCode };

/** What the loop needs from the agent: a narrow context, so that its tests need no server. */
export interface LoopContext {
  readonly slots: Slots;
  readonly log: LogPort;
  /** Whether the agent takes new jobs now (running, ready, not fenced). */
  accepting(): boolean;
  /** Resolves when {@link accepting} may have changed. */
  acceptingChanged(): Promise<void>;
  /** The reference poll filter, as the slot's node, waiting up to `waitSeconds` on a wake-up server. */
  listCandidates(slot: SlotSpec, waitSeconds: number | null, signal: AbortSignal): Promise<JobJson[]>;
  /** Template cached by pk, executor allow-list, `canRun`. Never throws for a job's own fault. */
  evaluate(job: JobJson, signal: AbortSignal): Promise<Evaluation>;
  /** Acquire, re-read, confirm; on `claimed` the job runs and owns `slot`. */
  claim(slot: SlotSpec, job: JobJson, signal: AbortSignal): Promise<ClaimOutcome>;
  /** Called after each iteration that reached the server (the poll succeeded). */
  onPolled?(result: 'jobs' | 'empty', ms: number): void;
  onPollError?(err: unknown): void;
  onWatchdog?(stuckMs: number): void;
  /** A job is skipped for a while (it cannot run here, or its preparation failed). */
  onSkipped?(jobPk: number, reason: string): void;
}

export interface LoopOptions {
  pollScheduleS: readonly number[];
  errorBackoffS: readonly number[];
  /** Seconds of `X-UFDL-Wait`, or null when the server does not offer wake-up. */
  waitSeconds: number | null;
  skipFailedForMs: number;
  /**
   * How many of the jobs it skips a poll leaves out of the server's answer (`listCandidates` names
   * them to a wake-up server); 0: none, the server lists them again.
   */
  excludedPerPoll?: number;
  /** An iteration running longer than this is abandoned by the watchdog. */
  watchdogMs: number;
  random?: () => number;
}

export interface LoopStatus {
  iterations: number;
  lastPollAt: number | null;
  lastPollError: string | null;
  watchdogRestarts: number;
  skipped: { jobPk: number; untilMs: number; reason: string }[];
}

class IterationAborted extends Error {
  constructor() {
    super('poll iteration abandoned');
    this.name = 'IterationAborted';
  }
}

/** Resolves when `promise` does or `signal` aborts, whichever is first, leaving no listener behind. */
function untilOrStopped(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}

export class PollLoop {
  readonly #ctx: LoopContext;
  readonly #options: LoopOptions;
  #idle: Schedule;
  readonly #errors: Schedule;
  /**
   * Jobs whose fresh skip sent the next poll at once, since the loop last waited. Skipped afresh
   * again — their skip ran out before a poll could leave them out, or the server listed them
   * regardless — they send none: that poll would list them again, a busy loop.
   */
  readonly #polledAtOnceFor = new Set<number>();
  readonly skipList: SkipList;
  readonly #stop = new AbortController();
  /** The iteration running now; `claiming` while it waits for a claim, which the watchdog leaves alone. */
  #iteration: { controller: AbortController; startedAt: number; claiming: boolean } | null = null;
  #watchdog: NodeJS.Timeout | undefined;
  #done: Promise<void> | undefined;
  #status: LoopStatus = { iterations: 0, lastPollAt: null, lastPollError: null, watchdogRestarts: 0, skipped: [] };

  constructor(ctx: LoopContext, options: LoopOptions, skipList = new SkipList()) {
    this.#ctx = ctx;
    this.#options = options;
    this.#idle = new Schedule(options.pollScheduleS, { random: options.random });
    this.#errors = new Schedule(options.errorBackoffS, { random: options.random });
    this.skipList = skipList;
  }

  /** Start the loop; resolves when it has stopped. */
  start(): Promise<void> {
    this.#done ??= this.#run();
    this.#armWatchdog();
    return this.#done;
  }

  /** Stop polling: abort a held poll or a sleep at once. A claim in flight settles first. */
  async stop(): Promise<void> {
    this.#stop.abort();
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    await this.#done;
  }

  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  getStatus(): LoopStatus {
    return { ...this.#status, skipped: this.skipList.entries() };
  }

  /** A new idle poll schedule (a configuration reload); it applies from the next wait, from its first step. */
  setPollSchedule(delaysS: readonly number[]): void {
    this.#idle = new Schedule(delaysS, { random: this.#options.random });
  }

  /** A job that failed preparation after it was claimed: skip it for a while. */
  skip(jobPk: number, reason: string): void {
    this.skipList.add(jobPk, this.#options.skipFailedForMs, reason);
    this.#ctx.onSkipped?.(jobPk, reason);
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    while (!stop.aborted) {
      await untilOrStopped(this.#ctx.slots.onFree(), stop);
      if (stop.aborted) break;
      if (!this.#ctx.accepting()) {
        await untilOrStopped(Promise.race([this.#ctx.acceptingChanged(), sleepUnlessAborted(1000, stop)]), stop);
        continue;
      }
      const controller = new AbortController();
      const onStop = () => controller.abort();
      stop.addEventListener('abort', onStop, { once: true });
      this.#iteration = { controller, startedAt: Date.now(), claiming: false };
      try {
        const waitMs = await this.#iterate(controller.signal);
        if (waitMs > 0) await sleepUnlessAborted(waitMs, stop);
      } catch (err) {
        if (err instanceof IterationAborted) {
          if (!stop.aborted) this.#ctx.log.warn({}, 'poll iteration abandoned by the watchdog; starting a new one');
          continue;
        }
        // A bug: never let the loop die of it, but slow down.
        this.#ctx.log.error({ err }, 'poll loop iteration failed unexpectedly');
        await sleepUnlessAborted(this.#errors.next(), stop);
      } finally {
        stop.removeEventListener('abort', onStop);
        this.#iteration = null;
        this.#status.iterations++;
      }
    }
  }

  /** One iteration; returns how long to wait before the next. */
  async #iterate(signal: AbortSignal): Promise<number> {
    const { slots, log } = this.#ctx;
    const slot = slots.tryAcquire();
    if (!slot) return 0;
    let slotHandedOver = false;
    try {
      const started = Date.now();
      let jobs: JobJson[];
      try {
        jobs = await abortable(this.#ctx.listCandidates(slot, this.#options.waitSeconds, signal), signal, () => new IterationAborted());
      } catch (err) {
        if (err instanceof IterationAborted || signal.aborted) throw new IterationAborted();
        this.#status.lastPollError = err instanceof Error ? err.message : String(err);
        this.#ctx.onPollError?.(err);
        const delay = this.#errors.next();
        log.warn({ err: this.#status.lastPollError, retryInMs: delay }, 'polling the queue failed');
        return delay;
      }
      const elapsed = Date.now() - started;
      this.#errors.reset();
      this.#status.lastPollAt = Date.now();
      this.#status.lastPollError = null;
      this.#ctx.onPolled?.(jobs.length > 0 ? 'jobs' : 'empty', elapsed);

      const skippedNow: number[] = [];
      for (const job of jobs) {
        if (signal.aborted) throw new IterationAborted();
        if (!this.#ctx.accepting()) return 0;
        if (this.skipList.has(job.pk)) continue;
        const evaluation = await abortable(this.#ctx.evaluate(job, signal), signal, () => new IterationAborted());
        if (!evaluation.ok) {
          const code = evaluation.code === undefined ? {} : { code: evaluation.code };
          log.info({ job: job.pk, reason: evaluation.reason, ...code, skipForMs: this.#options.skipFailedForMs }, 'skipping a job this node cannot run');
          this.skip(job.pk, evaluation.reason);
          skippedNow.push(job.pk);
          continue;
        }
        // A claim is not abandoned half-way by the watchdog: it journals and releases on its own, and
        // its release of a job it could not start waits out a server outage however long (its own
        // retries are logged). The watchdog's clock starts again once the claim has answered.
        const iteration = this.#iteration;
        if (iteration) iteration.claiming = true;
        let outcome: ClaimOutcome;
        try {
          outcome = await this.#ctx.claim(slot, job, signal);
        } finally {
          if (iteration) {
            iteration.claiming = false;
            iteration.startedAt = Date.now();
          }
        }
        if (outcome === 'claimed') {
          slotHandedOver = true;
          this.#idle.reset();
          return 0;
        }
        if (outcome === 'declined') return 0;
      }

      // Nothing claimed. Jobs skipped just now, that the next poll leaves out: it goes at once, and a
      // wake-up server holds it until a job this node may take comes. (A server that listed them again
      // regardless brings none new to skip: the idle schedule then, not a busy loop. So does a job
      // skipped afresh after it already sent a poll at once: its skip ran out before that poll.)
      const fresh = skippedNow.filter((pk) => !this.#polledAtOnceFor.has(pk));
      if (fresh.length > 0 && this.skipList.current().length <= (this.#options.excludedPerPoll ?? 0)) {
        for (const pk of fresh) this.#polledAtOnceFor.add(pk);
        return 0;
      }
      this.#polledAtOnceFor.clear();
      // A wake-up poll that came back empty after the server held it needs no extra wait; anything
      // else (reference server, only unfit jobs, a wait of 0 s that nothing held) waits the idle schedule.
      const waitSeconds = this.#options.waitSeconds ?? 0;
      const heldWait = waitSeconds > 0 && jobs.length === 0 && elapsed >= waitSeconds * 500;
      return heldWait ? 0 : this.#idle.next();
    } finally {
      if (!slotHandedOver) slots.release(slot.index);
    }
  }

  #armWatchdog(): void {
    if (this.#stop.signal.aborted) return;
    const everyMs = Math.max(100, Math.min(5000, this.#options.watchdogMs / 4));
    this.#watchdog = setTimeout(() => {
      const iteration = this.#iteration;
      if (iteration && !iteration.claiming && !iteration.controller.signal.aborted) {
        const stuckMs = Date.now() - iteration.startedAt;
        if (stuckMs > this.#options.watchdogMs) {
          this.#status.watchdogRestarts++;
          this.#ctx.log.error(
            { stuckMs, limitMs: this.#options.watchdogMs },
            'WATCHDOG: the poll loop made no progress; abandoning the stuck iteration and starting a new one',
          );
          this.#ctx.onWatchdog?.(stuckMs);
          iteration.controller.abort();
        }
      }
      this.#armWatchdog();
    }, everyMs);
    this.#watchdog.unref();
  }
}
