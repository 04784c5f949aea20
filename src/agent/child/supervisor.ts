/**
 * Supervise one running child: enforce its wall-clock limit, stop it on request (cancel, shutdown,
 * self-fencing), and clean up what it leaves behind. Owns one timer, hence its own file.
 *
 * Everything ends in {@link ChildSupervisor.done}, one result that says how the command ended and
 * why the agent intervened, if it did.
 */
import { groupMembers, type ProcStat } from './proc.js';
import type { OutsideEnd, OutsideWork, RunningChild } from './running-child.js';
import { stopGroup, type StopGroupResult } from './stop-group.js';
import type { ExitResult } from './wrapper.js';
import { MAX_TIMER_MS } from '../../client/options.js';

/** Why the agent stopped a child. */
export type StopReason =
  /** The template's or job's `time_limit` passed. */
  | 'time-limit'
  /** The job was cancelled on the server. */
  | 'cancelled'
  /** The agent is shutting down and does not wait for the job. */
  | 'shutdown'
  /** The agent lost the server for too long and stops its jobs so none runs twice (self-fencing). */
  | 'fenced';

/** Options of {@link ChildSupervisor}. */
export interface SuperviseOptions {
  /**
   * Wall-clock limit counted from the child's start (not from supervision), so that a child
   * re-attached after an agent restart keeps the limit it started with. No limit when absent.
   */
  timeLimitMs?: number | undefined;
  /** SIGTERM-to-SIGKILL grace when stopping the group. */
  killGraceMs: number;
  /** Work outside the group (see `ChildSpec.outside`): stopped before the group, settled after the end. */
  outside?: OutsideWork | undefined;
  /** Told when a stop begins, e.g. to log it with the job's logger. */
  onStop?: (reason: StopReason) => void;
}

/** The end of a supervised child. */
export interface SupervisedExit {
  exit: ExitResult;
  /** Why the agent stopped the child; `undefined` when it ended by itself. */
  stopReason: StopReason | undefined;
  /** SIGKILL was needed (the child outlived the grace period, or left processes that did). */
  forced: boolean;
  /** Processes that the command left running after it ended, which were then stopped. */
  strays: number;
  /** Processes of the group alive even after SIGKILL; should always be empty. */
  survivors: ProcStat[];
  /** What the work outside the group said of its end, and what of it is left (see `OutsideWork`). */
  outside?: OutsideEnd | undefined;
}

/** Watches one {@link RunningChild} until it ends; see the module comment. */
export class ChildSupervisor {
  /** Resolves once with how the child ended; never rejects. */
  readonly done: Promise<SupervisedExit>;
  readonly child: RunningChild;
  readonly #options: SuperviseOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopReason: StopReason | undefined;
  #stopping: Promise<StopGroupResult> | undefined;
  #ended = false;

  constructor(child: RunningChild, options: SuperviseOptions) {
    this.child = child;
    this.#options = options;
    if (options.timeLimitMs !== undefined) this.#armTimeLimit(child.startedAtMs + options.timeLimitMs);
    this.done = this.#watch();
  }

  /**
   * Stop the child (its outside work first, then group SIGTERM, grace, SIGKILL). Idempotent: the first reason
   * wins and every call returns {@link done}. A child that has already ended is left alone.
   */
  stop(reason: StopReason): Promise<SupervisedExit> {
    if (!this.#ended && this.#stopping === undefined) {
      this.#stopReason = reason;
      try {
        this.#options.onStop?.(reason);
      } finally {
        // Whatever the hook did, the child is stopped: a shutdown or a fence that left it running
        // would let it run on beside the node the server gives its job to.
        this.#stopping = this.#stopGroup();
      }
    }
    return this.done;
  }

  /**
   * Stop the child at `deadlineMs`. A timer waits at most {@link MAX_TIMER_MS}: a longer delay (a
   * time limit of a month) would fire at once, so the timer re-arms itself until the deadline is near.
   */
  #armTimeLimit(deadlineMs: number): void {
    if (this.#ended) return;
    const remaining = Math.max(0, deadlineMs - Date.now());
    this.#timer = setTimeout(() => {
      if (remaining > MAX_TIMER_MS) this.#armTimeLimit(deadlineMs);
      else void this.stop('time-limit');
    }, Math.min(remaining, MAX_TIMER_MS));
  }

  async #stopGroup(): Promise<StopGroupResult> {
    // The container first, with the whole grace: its `docker run` client in the group then ends by
    // itself, whereas a SIGKILLed client would leave the container running.
    await this.#outside()?.stop(this.#options.killGraceMs);
    return stopGroup(this.child.pid, { graceMs: this.#options.killGraceMs });
  }

  async #watch(): Promise<SupervisedExit> {
    const exit = await this.child.exited;
    this.#ended = true;
    clearTimeout(this.#timer);
    const ended = await this.#groupEnd();
    const outside = await this.#outside()?.settle(exit);
    return { exit, ...ended, ...(outside ? { outside } : {}) };
  }

  #outside(): OutsideWork | undefined {
    return this.#options.outside ?? this.child.outside;
  }

  async #groupEnd(): Promise<Omit<SupervisedExit, 'exit' | 'outside'>> {
    if (this.#stopping) {
      const stopped = await this.#stopping;
      return { stopReason: this.#stopReason, forced: stopped.forced, strays: 0, survivors: stopped.survivors };
    }
    // The command ended by itself; background processes it started may still run (and hold the GPU,
    // or keep writing the log). They are not the job's result: stop them.
    const strays = groupMembers(this.child.pid).length;
    if (strays === 0) return { stopReason: undefined, forced: false, strays: 0, survivors: [] };
    const stopped = await stopGroup(this.child.pid, { graceMs: this.#options.killGraceMs });
    return { stopReason: undefined, forced: stopped.forced, strays, survivors: stopped.survivors };
  }
}
