/**
 * Noticing that a running job was cancelled or taken away: a web-socket subscription where the server authenticates watchers (capabilities `websocket.auth`), and always a
 * timer that re-reads the job every `cancelCheckIntervalMs` — never only when the child prints
 * (the reference worker looks only then). The timer re-arms itself after each check.
 */
import { phaseOf } from '../../protocol/phase.js';
import type { JobJson, JobNotification } from '../../protocol/wire.js';
import { isClientError } from '../../client/errors.js';
import { failPoint } from '../fail-points.js';
import type { NodeApi } from '../ports.js';

export type LossReason =
  /** The job was cancelled on the server. */
  | 'cancelled'
  /** The job no longer belongs to this node (aborted by an admin or by lost-node recovery, deleted). */
  | 'taken-away';

/** Whether a re-read job is still ours to run; the loss reason otherwise. */
export function lossOf(job: JobJson, selfPk: number | null): LossReason | undefined {
  const phase = phaseOf(job);
  if (phase === 'CANCELLED' || job.is_cancelled) return 'cancelled';
  if (job.node !== selfPk || phase !== 'STARTED' || job.deletion_time !== null) return 'taken-away';
  return undefined;
}

export interface CancelWatchOptions {
  api: Pick<NodeApi, 'getJob' | 'watchJob' | 'nodePk'>;
  jobPk: number;
  intervalMs: number;
  useWebSocket: boolean;
  log: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  onLost: (reason: LossReason) => void;
  /** Every successful re-read (feeds the server-contact tracker through the client wrapper anyway). */
  onChecked?: (job: JobJson) => void;
}

export class CancelWatch {
  readonly #o: CancelWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #watch: { close(): void } | undefined;
  #stopped = false;
  #fired = false;
  #checking: Promise<void> | undefined;

  constructor(options: CancelWatchOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#o.useWebSocket) {
      this.#watch = this.#o.api.watchJob(this.#o.jobPk, (message) => this.#onMessage(message), {
        onError: (error) => {
          this.#o.log.debug({ kind: error.kind, status: error.status, attempt: error.attempt }, 'job web-socket: ' + error.message);
          // A socket closed or refused may be the news itself (a hard-deleted job's watchers are
          // closed, and it is refused with 404), or have missed a notification while it was down:
          // the job is read again now rather than at the next tick of the timer.
          void this.checkNow();
        },
      });
    }
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watch?.close();
    this.#watch = undefined;
  }

  /** Re-read the job now (e.g. after a progress report was refused with 406). */
  checkNow(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  #onMessage(message: JobNotification): void {
    if (message.pk !== this.#o.jobPk) return;
    if (message.transition === 'cancel' || message.cancelled) this.#fire('cancelled');
    else if (message.transition === 'abort' || message.transition === 'release' || message.transition === 'reset') void this.checkNow();
  }

  #fire(reason: LossReason): void {
    if (this.#fired || this.#stopped) return;
    this.#fired = true;
    this.#o.onLost(reason);
  }

  async #check(): Promise<void> {
    if (this.#stopped || this.#fired) return;
    try {
      const job = await this.#o.api.getJob(this.#o.jobPk);
      failPoint('running:after-http');
      this.#o.onChecked?.(job);
      const loss = lossOf(job, this.#o.api.nodePk);
      if (loss) this.#fire(loss);
    } catch (err) {
      if (isClientError(err, 'not-found')) this.#fire('taken-away');
      else this.#o.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'cancel check failed');
    }
  }

  #arm(): void {
    if (this.#stopped || this.#fired) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.checkNow().finally(() => this.#arm());
    }, this.#o.intervalMs);
    this.#timer.unref();
  }
}
