/**
 * Warnings about a job's failed progress reports, rate-limited: the first failure is logged at once,
 * later ones at most once per window with how many failed meanwhile, and the first success after
 * failures says so. A report that fails every few seconds for an hour gives a handful of lines, not
 * none (the failures used to be logged only at debug level) and not thousands.
 */
import type { LogPort } from '../ports.js';

export interface ReportFailuresOptions {
  log: Pick<LogPort, 'warn' | 'info'>;
  /** @default 60000 */
  windowMs?: number;
  now?: () => number;
}

export class ReportFailures {
  readonly #log: Pick<LogPort, 'warn' | 'info'>;
  readonly #windowMs: number;
  readonly #now: () => number;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  /** Failures since the last warning. */
  #unreported = 0;
  /** Failures since the last success. */
  #failing = 0;

  constructor(options: ReportFailuresOptions) {
    this.#log = options.log;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  failed(err: unknown, progress: number): void {
    this.#failing++;
    this.#unreported++;
    const now = this.#now();
    if (now - this.#lastWarnAt < this.#windowMs) return;
    this.#log.warn(
      { err: err instanceof Error ? err.message : String(err), progress, failedSinceLastWarning: this.#unreported, failingInARow: this.#failing, nextWarningInMs: this.#windowMs },
      'progress report failed',
    );
    this.#lastWarnAt = now;
    this.#unreported = 0;
  }

  succeeded(): void {
    if (this.#failing === 0) return;
    this.#log.info({ failedInARow: this.#failing }, 'progress reports reach the server again');
    this.#failing = 0;
    this.#unreported = 0;
    this.#lastWarnAt = Number.NEGATIVE_INFINITY;
  }
}
