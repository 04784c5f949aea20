/**
 * Waiting, the agent's one way: a {@link Schedule} of delays (the idle poll schedule, the error
 * back-off, the login re-checks), an exponential back-off with jitter for the calls a job must get
 * through ({@link retryDelayMs}), and two sleeps that end when the agent stops — one that rejects
 * (a start-up step gives up) and one that resolves (a loop goes round once more and sees it stopped).
 */

/**
 * Delays that advance one step per `next()` and stick on the last, each with ±jitter: the
 * reference worker's poll schedule (docs/COMPATIBILITY.md), which spreads many nodes' polls apart.
 */
export class Schedule {
  readonly #delaysMs: readonly number[];
  readonly #jitter: number;
  readonly #random: () => number;
  #index = 0;

  constructor(delaysS: readonly number[], options: { jitter?: number; random?: () => number } = {}) {
    if (delaysS.length === 0) throw new TypeError('Schedule: at least one delay is needed');
    this.#delaysMs = delaysS.map((s) => s * 1000);
    this.#jitter = options.jitter ?? 0.2;
    this.#random = options.random ?? Math.random;
  }

  /** The current delay with ±jitter, then advance. */
  next(): number {
    const base = this.#delaysMs[Math.min(this.#index, this.#delaysMs.length - 1)]!;
    this.#index = Math.min(this.#index + 1, this.#delaysMs.length - 1);
    const factor = 1 + this.#jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.round(base * factor));
  }

  reset(): void {
    this.#index = 0;
  }
}

/** Exponential back-off with full jitter, capped: the wait before retry number `attempt` (from 0). */
export function retryDelayMs(attempt: number, baseMs = 500, maxMs = 30_000): number {
  return Math.round(Math.random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** Sleep `ms`; rejects with the signal's reason when it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sleep `ms`, ending early (resolving, not rejecting) when `signal` aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
