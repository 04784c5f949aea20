/**
 * Self-fencing (DESIGN §3 "Lost-node recovery", peer-agents.md §3.1). A server with lost-node recovery
 * aborts the jobs of a node it has not heard from for `lost_after_seconds`, so that another node can
 * run them. If this agent cannot reach the server for that long, its children must stop *before* the
 * server gives their jobs away, or a job would run twice at once. The fence fires once the server has
 * been unreachable for `lost_after − fenceMarginMs` while jobs run; the job runners then stop their
 * children and report consistently when the server answers again.
 */

export interface Clock {
  now(): number;
}

export const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

/**
 * When the server last answered (any HTTP answer counts: a 4xx proves it is reachable). Fed by every
 * API call the agent makes; the heartbeat keeps it fresh while jobs run. Silence is measured from the
 * last answer, not from the first failure, because a failing call may retry for a long time before it
 * reports.
 */
export class ServerContact {
  #lastOkAt: number;
  #failing = false;
  #listeners = new Set<() => void>();
  #answerListeners = new Set<() => void>();
  #lostListeners = new Set<(err: unknown) => void>();
  readonly #clock: Clock;

  constructor(clock: Clock = SYSTEM_CLOCK) {
    this.#clock = clock;
    this.#lastOkAt = clock.now();
  }

  ok(): void {
    const recovered = this.#failing;
    this.#lastOkAt = this.#clock.now();
    this.#failing = false;
    for (const listener of this.#answerListeners) listener();
    if (recovered) for (const listener of this.#listeners) listener();
  }

  /** Called on every answer (e.g. to journal the last contact, which the journal throttles). */
  onAnswer(listener: () => void): () => void {
    this.#answerListeners.add(listener);
    return () => this.#answerListeners.delete(listener);
  }

  failed(err?: unknown): void {
    const wasReachable = !this.#failing;
    this.#failing = true;
    if (wasReachable) for (const listener of this.#lostListeners) listener(err);
  }

  /** Called on the first failure after an answer (the server has just become unreachable). */
  onUnreachable(listener: (err: unknown) => void): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  /** Called on the first answer after failures. */
  onReachable(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get lastOkAt(): number {
    return this.#lastOkAt;
  }

  /** False after a failed call until the next answer. */
  get reachable(): boolean {
    return !this.#failing;
  }

  /** Time since the server last answered. */
  silentForMs(): number {
    return Math.max(0, this.#clock.now() - this.#lastOkAt);
  }
}

/**
 * The fence threshold: `lost_after − margin`, but never less than half of `lost_after` (a margin larger
 * than the server's limit would fence on every blip).
 */
export function fenceThresholdMs(lostAfterSeconds: number, marginMs: number): number {
  const lostAfterMs = lostAfterSeconds * 1000;
  return Math.max(lostAfterMs - marginMs, lostAfterMs / 2);
}

export interface FenceOptions {
  contact: ServerContact;
  thresholdMs: number;
  /** Whether any job runs now: nothing to fence otherwise. */
  hasRunningJobs: () => boolean;
  /** Stop the children; called once per outage. */
  onFence: (unreachableForMs: number) => void;
  clock?: Clock;
}

/**
 * A re-arming check (STYLE rule 6) that fires {@link FenceOptions.onFence} once per outage. It checks
 * often enough to fire within a tenth of the threshold (at most once a second).
 */
export class Fence {
  readonly #options: FenceOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** When the fence fired in the current outage, or null. */
  #fencedAt: number | null = null;
  #fencedCount = 0;

  constructor(options: FenceOptions) {
    this.#options = options;
  }

  get fencedCount(): number {
    return this.#fencedCount;
  }

  get thresholdMs(): number {
    return this.#options.thresholdMs;
  }

  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One check; exposed for tests. */
  check(): boolean {
    const { contact, thresholdMs, hasRunningJobs, onFence } = this.#options;
    if (this.#fencedAt !== null) {
      // Re-arm once the server answered again (the runners then report the fenced jobs).
      if (contact.lastOkAt <= this.#fencedAt) return false;
      this.#fencedAt = null;
    }
    const silentMs = contact.silentForMs();
    if (silentMs < thresholdMs || !hasRunningJobs()) return false;
    this.#fencedAt = (this.#options.clock ?? SYSTEM_CLOCK).now();
    this.#fencedCount++;
    onFence(silentMs);
    return true;
  }

  #arm(): void {
    if (this.#stopped) return;
    const everyMs = Math.min(1000, Math.max(50, this.#options.thresholdMs / 10));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.check();
      } finally {
        this.#arm();
      }
    }, everyMs);
    this.#timer.unref();
  }
}
