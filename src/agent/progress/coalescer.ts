/**
 * Coalesce a job's progress: at most one report per interval, always the latest value with its data,
 * and the final value flushed at the end. The reference worker posts once per changed
 * line; a child printing 10 000 lines a second would send 10 000 requests.
 *
 * Reports never overlap: a slow server delays the next report instead of stacking requests, and what
 * arrived meanwhile is folded into it. Memory is one pending update, whatever the rate of `push`.
 */
import type { ProgressUpdate } from './update.js';

/** Options of {@link ProgressCoalescer}. */
export interface CoalescerOptions {
  /** Minimum time between the starts of two reports. */
  intervalMs: number;
  /** Deliver one update (e.g. `POST /v1/jobs/{pk}/progress/{value}`). */
  report: (update: ProgressUpdate) => Promise<void> | void;
  /** Told when `report` throws; the coalescer carries on with the next update. */
  onError?: (err: unknown, update: ProgressUpdate) => void;
  /**
   * The highest progress already reported for this attempt (e.g. before the agent restarted): no
   * report goes below it.
   * @default 0
   */
  floor?: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** See the module comment. */
export class ProgressCoalescer {
  readonly #options: CoalescerOptions;
  readonly #now: () => number;
  #pending: ProgressUpdate | undefined;
  #lastSent: { progress: number; dataJson: string } | undefined;
  #lastStart = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;
  #reports = 0;
  /** The highest progress reported (or the floor): progress never goes backwards within an attempt. */
  #highest: number;

  constructor(options: CoalescerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#highest = options.floor ?? 0;
  }

  /** Reports delivered (attempted) so far. */
  get reports(): number {
    return this.#reports;
  }

  /** Offer an update; it replaces any update not yet sent. Ignored after {@link stop}. */
  push(update: ProgressUpdate): void {
    if (this.#stopped) return;
    this.#pending = update;
    this.#schedule();
  }

  /** Send the pending update now (waiting for a report in flight first), ignoring the interval. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#inFlight) await this.#inFlight;
    if (this.#pending) await this.#send();
  }

  /** Flush the final update and accept no more. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.flush();
  }

  #schedule(): void {
    // A report in flight reschedules when it completes; an armed timer will pick up the new value.
    if (this.#timer || this.#inFlight) return;
    const wait = this.#lastStart + this.#options.intervalMs - this.#now();
    if (wait <= 0) {
      void this.#send();
    } else {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.#send();
      }, wait);
      this.#timer.unref();
    }
  }

  async #send(): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return;
    // A lower value (a child that starts a second phase at 0, or re-read output) keeps its data but
    // not its value: watchers must never see an attempt's progress go backwards.
    const update = pending.progress < this.#highest ? { ...pending, progress: this.#highest } : pending;
    this.#highest = update.progress;
    const dataJson = JSON.stringify(update.data);
    // Nothing new to say: the same value and body as the last report (the reference's rule).
    if (this.#lastSent && this.#lastSent.progress === update.progress && this.#lastSent.dataJson === dataJson) return;
    this.#lastStart = this.#now();
    this.#lastSent = { progress: update.progress, dataJson };
    this.#reports++;
    const inFlight = (async () => {
      try {
        await this.#options.report(update);
      } catch (err) {
        this.#options.onError?.(err, update);
      }
    })();
    this.#inFlight = inFlight;
    await inFlight;
    this.#inFlight = undefined;
    if (this.#pending && !this.#stopped) this.#schedule();
  }
}
