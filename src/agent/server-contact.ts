/**
 * When the server last answered, as every part of the agent learns it: each attempt of each call
 * tells {@link ServerContact} whether the server answered, and the heartbeat keeps it fresh while
 * jobs run. Self-fencing (`health/fence.ts`), the job leases (`job/leases.ts`), readiness and the
 * outage log all read it.
 */

/** Milliseconds on a clock that only moves forward; its values are no wall-clock times. */
export interface Clock {
  now(): number;
}

/**
 * The process's monotonic clock (`performance.now()`), which the wall clock's jumps (NTP stepping
 * the time, `date -s`, a VM's clock corrected) do not move. Silences measured on the wall clock
 * jumped with it: forward, the fence took the jump for an outage and stopped every running job; back,
 * it hid a real outage for as long as the jump. It stands still while the machine is suspended; the
 * job leases, on the boot clock, count that time (`job/leases.ts`).
 */
export const SYSTEM_CLOCK: Clock = { now: () => performance.now() };

/**
 * When the server last answered (any HTTP answer counts: a 4xx proves it is reachable). Fed by every
 * API call the agent makes; the heartbeat keeps it fresh while jobs run. Silence is measured from the
 * last answer, not from the first failure, because a failing call may retry for a long time before it
 * reports.
 */
export class ServerContact {
  #lastOkAt: number;
  /** The same moment on the wall clock, only to be shown. */
  #lastOkWallMs = Date.now();
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
    this.#lastOkWallMs = Date.now();
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

  /** When the server last answered, on the contact's clock (not a wall-clock time: see {@link SYSTEM_CLOCK}). */
  get lastOkAt(): number {
    return this.#lastOkAt;
  }

  /** When the server last answered, as a wall-clock time, for people to read. */
  lastOkWallClock(): Date {
    return new Date(this.#lastOkWallMs);
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
