/**
 * What the log says about the server's reachability: one warning when it stops answering (with how
 * the agent keeps trying), one line when it answers again (with how long it was away). Every attempt
 * of every call feeds {@link ServerContact}, so the warning comes at the first failed attempt, not
 * after a call has spent its retries; between the two lines the agent's retries stay quiet.
 */
import type { ServerContact } from '../server-contact.js';
import type { LogPort } from '../ports.js';

export interface OutageLogOptions {
  contact: ServerContact;
  log: Pick<LogPort, 'warn' | 'info'>;
  /** How calls are retried while the server is away, for the warning (e.g. the poll back-off). */
  retry: Record<string, unknown>;
  now?: () => number;
}

/** Subscribes at construction; `stop()` unsubscribes. */
export class OutageLog {
  readonly #stops: (() => void)[];
  #since: number | null = null;

  constructor(options: OutageLogOptions) {
    const now = options.now ?? Date.now;
    this.#stops = [
      options.contact.onUnreachable((err) => {
        this.#since = now();
        options.log.warn(
          { err: err instanceof Error ? err.message : err === undefined ? undefined : String(err), lastAnswerAgoMs: options.contact.silentForMs(), retry: options.retry },
          'the server is unreachable; running jobs go on, and calls are retried until it answers',
        );
      }),
      options.contact.onReachable(() => {
        const outageMs = this.#since === null ? undefined : now() - this.#since;
        this.#since = null;
        options.log.info({ outageMs }, 'the server answers again');
      }),
    ];
  }

  /** When the current outage began (ms since the epoch), or null while the server answers. */
  get since(): number | null {
    return this.#since;
  }

  stop(): void {
    for (const stop of this.#stops) stop();
  }
}
