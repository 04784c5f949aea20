/**
 * One job on this agent as every stage sees it — claim, start, supervise, finish: who the job is,
 * how it talks to the server and the journal, where its files are, and what it tells the agent. The
 * in-flight set (`in-flight.ts`) builds one {@link JobContext} per job from what all jobs share
 * ({@link JobsShared}); recovery builds the few fields the journalled server calls need
 * ({@link ServerCallContext}) for the jobs it settles without a runner.
 *
 * The job events are declared here, once ({@link JobEvents}): a job emits them through the agent,
 * which re-emits them as its own.
 */
import type { JobDir } from '../child/job-dir.js';
import type { LiveLogSettings } from '../logs/live-log-stream.js';
import type { AgentMetrics } from '../metrics.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { ExecutorPort, JournalPort, LogPort, NodeApi } from '../ports.js';
import type { SlotSpec } from '../slots/slots.js';
import type { JobLeases } from './leases.js';

/** How a job left this agent. */
export type RunOutcome =
  | 'success'
  | 'error'
  | 'cancelled'
  /** Finished with an error, reset and released to run again (shutdown, restart within the cap). */
  | 'requeued'
  /** Released before it started (preparation failed, draining). */
  | 'released'
  /** Lost a race, or taken away by the server. */
  | 'lost'
  /** Stopped because the server was unreachable too long (self-fencing). */
  | 'fenced'
  /** The agent exited before it could report; the journal keeps what is owed. */
  | 'interrupted';

/** What happens to a job, as the agent's events tell it (`agent.on('started', …)`). */
export interface JobEvents {
  acquired: [{ jobPk: number; slot: number }];
  started: [{ jobPk: number; slot: number; pid: number }];
  progressed: [{ jobPk: number; progress: number; data: Record<string, unknown> }];
  finished: [{ jobPk: number; slot: number; outcome: RunOutcome; error: string | null }];
}

export interface JobLogger extends LogPort {
  child(bindings: Record<string, unknown>): JobLogger;
}

/** The options a job runs with. */
export type JobOptions = Pick<
  ResolvedAgentOptions,
  'workDir' | 'cancelCheckIntervalMs' | 'progressIntervalMs' | 'killGraceMs' | 'keepJobDirs' | 'serverUrl' | 'logMaxBytes'
>;

/** What every job of one agent shares. */
export interface JobsShared {
  readonly journal: JournalPort;
  readonly executor: ExecutorPort;
  readonly options: JobOptions;
  /** Stream running jobs' logs (src/agent/logs/); null when the server has no live logs or they are off. */
  readonly liveLog: LiveLogSettings | null;
  /** Watch cancellation over the web-socket (the server authenticates watchers). */
  readonly useWebSocket: boolean;
  /** The children's leases, when the server has lost-node recovery (else no child needs one). */
  readonly leases: JobLeases | undefined;
  readonly metrics: AgentMetrics;
  /** Tell the agent, and whoever listens to it, what happened to a job. */
  emit<K extends keyof JobEvents>(event: K, ...args: JobEvents[K]): void;
  /** Whether the agent still takes new work (false while draining or stopping). */
  accepting(): boolean;
  /** A job that failed preparation: the poll loop skips it for a while. */
  skip(jobPk: number, reason: string): void;
  /**
   * The journal could not be written while the job ran (disk full, I/O error): its entry no longer
   * says where the job stands, so the agent must hand it to recovery (agent.ts).
   */
  journalWriteFailed(jobPk: number, err: unknown): void;
}

/** One job on this agent. */
export interface JobContext extends JobsShared {
  readonly jobPk: number;
  readonly slot: SlotSpec;
  /** The client acting as the slot's node. */
  readonly api: NodeApi;
  readonly log: JobLogger;
  /** Aborted when the agent exits without waiting: reporting loops give up, the journal keeps the rest. */
  readonly signal: AbortSignal;
  /** The job directory: its paths until it is created, then the created one (or the one re-attached to). */
  dir: JobDir;
  /** The job has left this agent: log it, count it and tell the agent (once). */
  end(outcome: RunOutcome, error: string | null): void;
}

/** What the journalled server calls (`server-calls.ts`) need of a job's context. */
export type ServerCallContext = Pick<JobContext, 'jobPk' | 'api' | 'journal' | 'signal'> & { readonly log: LogPort };
