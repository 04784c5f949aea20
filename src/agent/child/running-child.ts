/**
 * The two shapes the child runner trades in: what to run ({@link ChildSpec}, built by an executor)
 * and a handle on what runs ({@link RunningChild}, from {@link spawnJob} or {@link attach}).
 */
import type { JobDir } from './job-dir.js';
import type { ExitResult } from './wrapper.js';

/** What to run for a job. Built by an executor's `prepare`, consumed by `spawnJob`. */
export interface ChildSpec {
  /** The command; `argv[0]` is looked up in `PATH` of `env`. Never run through a shell by the runner. */
  argv: string[];
  /** The complete environment of the child (see `childEnv`). */
  env: Record<string, string>;
  /** Working directory; the executors use the job directory. */
  cwd: string;
  /** The job directory: where stdout, stderr and the exit status go. */
  dir: JobDir;
  /** Work of the job that lives outside its process group (the Docker executor's container). */
  outside?: OutsideWork;
  /**
   * Watch the job's lease (see `lease.ts`): the wrapper stops the job by itself once the deadline in
   * the lease file passes. Absent when the server cannot give a job away (no lost-node recovery).
   */
  lease?: WrapperLease;
}

/**
 * Work of a job that lives outside its process group, which a group signal does not reach: a
 * container belongs to the Docker engine, not to the `docker run` client in the group. The supervisor
 * stops it before the group, and settles it once the child has ended.
 */
export interface OutsideWork {
  /** For logs, e.g. `container ufdl-job-4-1-0a1b2c3d`. */
  readonly description: string;
  /** Stop it: politely, then by force after `graceMs`; resolves once it no longer runs. Never rejects. */
  stop(graceMs: number): Promise<void>;
  /**
   * A command (argv, run without a shell) that ends the work by force, for the wrapper to run when it
   * fences the job by itself (see `wrapper.ts`): the agent may be frozen then, so `stop` cannot.
   */
  readonly fenceKill?: readonly string[];
  /** After the child ended: how the work ended, then remove it and check that it is gone. Never rejects. */
  settle(exit: ExitResult): Promise<OutsideEnd>;
}

/** What {@link OutsideWork.settle} learned. */
export interface OutsideEnd {
  /** Why the job failed, in words, when the exit status alone does not say (e.g. out of memory). */
  explanation?: string | undefined;
  /** What could not be removed, when something is left. */
  leftOver?: string | undefined;
}

/** How the wrapper watches the lease: how often it looks, and the SIGTERM-to-SIGKILL grace. */
export interface WrapperLease {
  /** The deadline in boot-clock seconds (`uptimeSeconds()`), as it is when the spawn writes it. */
  deadlineS: number;
  checkEveryS: number;
  graceS: number;
}

/** A job's child process, spawned by this agent or re-attached after a restart. */
export interface RunningChild {
  /** The wrapper's pid, which is also the process group id and the session id. */
  readonly pid: number;
  /** Field 22 of `/proc/<pid>/stat`: with `pid`, the identity to journal for re-attaching. */
  readonly startTime: number;
  /** When the process was forked, in ms since the epoch (derived from `startTime`). */
  readonly startedAtMs: number;
  readonly dir: JobDir;
  /** `spawned` by this agent process, or `attached` to one that an earlier agent process spawned. */
  readonly origin: 'spawned' | 'attached';
  /** Resolves once when the command has ended; never rejects. */
  readonly exited: Promise<ExitResult>;
  /** The work outside its group that its spec named, when it was spawned from one (see `ChildSpec.outside`). */
  readonly outside?: OutsideWork | undefined;
}
