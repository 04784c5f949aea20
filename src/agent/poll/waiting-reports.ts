/**
 * Telling the server why this node skips a job (see `reportWaiting`): each reason once per job, in
 * the background, and never in the way of polling — a failed report is only logged at debug level.
 */
import type { LogPort, NodeApi } from '../ports.js';

/** How many (job, reason) pairs are remembered as sent; then the memory starts over. */
const REMEMBERED = 1000;

export class WaitingReports {
  readonly #api: () => Pick<NodeApi, 'reportWaiting'> | undefined;
  readonly #log: LogPort;
  readonly #sent = new Set<string>();

  constructor(api: () => Pick<NodeApi, 'reportWaiting'> | undefined, log: LogPort) {
    this.#api = api;
    this.#log = log;
  }

  report(jobPk: number, reason: string): void {
    const key = `${jobPk}\u0000${reason}`;
    const api = this.#api();
    if (!api || this.#sent.has(key)) return;
    if (this.#sent.size >= REMEMBERED) this.#sent.clear();
    this.#sent.add(key);
    api.reportWaiting(jobPk, reason).catch((err: unknown) => {
      this.#sent.delete(key);
      this.#log.debug({ job: jobPk, err: err instanceof Error ? err.message : String(err) }, 'could not tell the server why the job is skipped');
    });
  }
}
