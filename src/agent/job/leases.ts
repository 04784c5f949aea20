/**
 * The leases of the jobs whose children run (see `child/lease.ts`). A lease's deadline is the moment
 * self-fencing would stop the job: the server's last answer plus the fence threshold
 * (`lost_after − fence_margin`). Every answer from the server moves the deadlines forward; the
 * wrapper of each child stops it once its deadline passes, whether or not this process still runs.
 *
 * A deadline that passed is final for that child ({@link JobLeases.lapsed}): its wrapper is stopping
 * or has stopped it, so the agent reports nothing more of its run (no progress, no outputs) and
 * treats it as fenced — even if the server answers again a moment later.
 */
import { writeLease } from '../child/lease.js';
import { uptimeSeconds } from '../child/proc.js';
import type { JobDir } from '../child/job-dir.js';
import type { WrapperLease } from '../child/running-child.js';
import { SYSTEM_CLOCK, type Clock, type ServerContact } from '../server-contact.js';

export interface JobLeasesOptions {
  contact: ServerContact;
  /** The fence threshold: how long after the server's last answer a child may still run. */
  thresholdMs: number;
  /** The wrapper's SIGTERM-to-SIGKILL grace. */
  killGraceMs: number;
  /** A lease was found lapsed: its job must be treated as fenced. */
  onLapsed(jobPk: number, overdueS: number): void;
  log: { warn(obj: object, msg?: string): void };
  /** The boot clock, in seconds, and the clock the contact's times are on (its monotonic one; tests pass their own). */
  uptime?: () => number;
  clock?: Clock;
}

interface Lease {
  dir: JobDir;
  deadlineS: number;
  lapsed: boolean;
}

export class JobLeases {
  readonly #options: JobLeasesOptions;
  readonly #leases = new Map<number, Lease>();
  readonly #uptime: () => number;
  readonly #unsubscribe: () => void;

  constructor(options: JobLeasesOptions) {
    this.#options = options;
    this.#uptime = options.uptime ?? uptimeSeconds;
    this.#unsubscribe = options.contact.onAnswer(() => this.renewAll());
  }

  /** How often a wrapper looks at its lease: a twentieth of the threshold, between 0.2 and 5 s. */
  get checkEveryS(): number {
    return Math.min(5, Math.max(0.2, this.#options.thresholdMs / 20_000));
  }

  /** The lease a child is spawned with (the spawn writes it); the job is watched from now on. */
  grant(jobPk: number, dir: JobDir): WrapperLease {
    const lease: Lease = { dir, deadlineS: this.#deadlineS(), lapsed: false };
    this.#leases.set(jobPk, lease);
    return {
      // Read when the spawn writes the file, after its clean-ups: an answer meanwhile renewed the
      // lease (and wrote the file), and the deadline of the grant would take that back.
      get deadlineS() {
        return lease.deadlineS;
      },
      checkEveryS: this.checkEveryS,
      graceS: Math.max(1, Math.ceil(this.#options.killGraceMs / 1000)),
    };
  }

  /**
   * A child re-attached after a restart: renew its lease now, even if the deadline on disk has
   * passed. Recovery re-attaches only after re-reading the job and finding it still this node's, and
   * the node's requests since then refreshed its `last_seen` on the server, whose lost-node sweep
   * re-checks that inside its transaction: the job cannot be given away meanwhile. A wrapper that
   * already stopped the child says so in its `fenced` file, which the runner reads.
   */
  adopt(jobPk: number, dir: JobDir): void {
    this.#leases.set(jobPk, { dir, deadlineS: Number.POSITIVE_INFINITY, lapsed: false });
    this.#renew(jobPk, this.#leases.get(jobPk)!);
  }

  /** The child ended: nothing more to renew. */
  release(jobPk: number): void {
    this.#leases.delete(jobPk);
  }

  /** Whether the job's deadline has passed (final: the wrapper stops or stopped the child). */
  lapsed(jobPk: number): boolean {
    const lease = this.#leases.get(jobPk);
    if (!lease) return false;
    if (!lease.lapsed && this.#uptime() >= lease.deadlineS) this.#lapse(jobPk, lease);
    return lease.lapsed;
  }

  /** Move every deadline forward to the server's last answer plus the threshold. */
  renewAll(): void {
    for (const [jobPk, lease] of this.#leases) this.#renew(jobPk, lease);
  }

  close(): void {
    this.#unsubscribe();
  }

  #renew(jobPk: number, lease: Lease): void {
    if (lease.lapsed || this.lapsed(jobPk)) return;
    const deadlineS = this.#deadlineS();
    // Whole seconds: rewriting the file for the same second would only cost a write.
    if (Number.isFinite(lease.deadlineS) && Math.floor(deadlineS) <= Math.floor(lease.deadlineS)) return;
    try {
      writeLease(lease.dir, deadlineS);
      lease.deadlineS = deadlineS;
    } catch (err) {
      // The job directory may be gone (the job just ended); the wrapper keeps the old deadline.
      this.#options.log.warn({ job: jobPk, err: String(err) }, 'could not renew the job lease');
    }
  }

  #lapse(jobPk: number, lease: Lease): void {
    lease.lapsed = true;
    this.#options.onLapsed(jobPk, this.#uptime() - lease.deadlineS);
  }

  /** The server's last answer plus the threshold, on the boot clock. */
  #deadlineS(): number {
    const { contact, thresholdMs } = this.#options;
    const remainingMs = contact.lastOkAt + thresholdMs - (this.#options.clock ?? SYSTEM_CLOCK).now();
    return this.#uptime() + remainingMs / 1000;
  }
}
