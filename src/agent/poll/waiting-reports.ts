/**
 * Telling the server why this node skips a job (see `reportWaiting`): each reason once per job, in
 * the background, and never in the way of polling — a failed report is only logged at debug level.
 *
 * One poll can skip a hundred jobs (a queue full of jobs for another executor), so the reports go
 * out a few at a time rather than all at once: a burst of one request per skipped job would compete
 * with the node's own calls for the server and the connection pool. Reports beyond what the queue
 * holds are dropped unremembered; the next poll that skips the job tries again.
 */
import PQueue from 'p-queue';
import type { LogPort, NodeApi } from '../ports.js';

/** How many (job, reason) pairs are remembered as sent; then the memory starts over. */
const REMEMBERED = 1000;
/** Reports in flight at once. */
const AT_ONCE = 2;
/** Reports waiting for their turn; a report past them is left for a later poll. */
const QUEUED = 500;

export class WaitingReports {
  readonly #api: () => Pick<NodeApi, 'reportWaiting'> | undefined;
  readonly #log: LogPort;
  readonly #sent = new Set<string>();
  readonly #queue = new PQueue({ concurrency: AT_ONCE });

  constructor(api: () => Pick<NodeApi, 'reportWaiting'> | undefined, log: LogPort) {
    this.#api = api;
    this.#log = log;
  }

  report(jobPk: number, reason: string): void {
    const key = `${jobPk}\u0000${reason}`;
    const api = this.#api();
    if (!api || this.#sent.has(key) || this.#queue.size >= QUEUED) return;
    if (this.#sent.size >= REMEMBERED) this.#sent.clear();
    this.#sent.add(key);
    this.#queue.add(() => api.reportWaiting(jobPk, reason)).catch((err: unknown) => {
      this.#sent.delete(key);
      this.#log.debug({ job: jobPk, err: err instanceof Error ? err.message : String(err) }, 'could not tell the server why the job is skipped');
    });
  }
}
