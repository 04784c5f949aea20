/**
 * The shapes a {@link JobRunner} trades in: how a job left the agent, what the runner tells the
 * agent, what it depends on, and the executor settings it supervises and reports with.
 */
import type { ExecutorPort, JournalPort, LogPort, NodeApi } from '../ports.js';
import type { LiveLogSettings } from '../logs/live-log-stream.js';
import type { JobDir } from '../child/job-dir.js';
import type { PreparedJob } from '../executors/types.js';
import type { ReportContext } from './server-calls.js';
import type { JobLeases } from './leases.js';
import type { JobRunner } from './runner.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { ProgressUpdate } from '../progress/update.js';
import type { SlotSpec } from '../slots/slots.js';

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

export interface RunnerLogger extends LogPort {
  child(bindings: Record<string, unknown>): RunnerLogger;
}

/** What the runner tells the agent. */
export interface RunnerHooks {
  onStarted?(runner: JobRunner, pid: number): void;
  onProgress?(runner: JobRunner, update: ProgressUpdate): void;
  onEnded?(runner: JobRunner, outcome: RunOutcome, error: string | null): void;
  /** A job that failed preparation: the loop skips it for a while. */
  onSkip?(jobPk: number, reason: string): void;
  onUploaded?(bytes: number): void;
  onUploadFailed?(): void;
  /** Whether the agent still takes new work (false while draining or stopping). */
  accepting?(): boolean;
}

export interface RunnerDeps {
  api: NodeApi;
  journal: JournalPort;
  executor: ExecutorPort;
  options: Pick<
    ResolvedAgentOptions,
    'workDir' | 'cancelCheckIntervalMs' | 'progressIntervalMs' | 'killGraceMs' | 'keepJobDirs' | 'serverUrl' | 'logMaxBytes'
  >;
  /** Stream running jobs' logs (src/agent/logs/); null when the server has no live logs or they are off. */
  liveLog: LiveLogSettings | null;
  /** Watch cancellation over the web-socket (the server authenticates watchers). */
  useWebSocket: boolean;
  /** The children's leases, when the server has lost-node recovery (else no child needs one). */
  leases?: JobLeases | undefined;
  slot: SlotSpec;
  log: RunnerLogger;
  hooks: RunnerHooks;
}

/**
 * One job as its {@link JobRunner} hands it to the phase modules (`job-start.ts`, `job-finish.ts`):
 * its dependencies, its reporting context, its directory, and how it leaves the agent.
 */
export interface JobScope {
  readonly jobPk: number;
  readonly deps: RunnerDeps;
  readonly log: RunnerLogger;
  /** For the reporting calls of `job-report.ts`; its signal aborts when the agent gives up waiting. */
  readonly report: ReportContext;
  /** The job directory: its paths until it is created, then the created one. */
  dir: JobDir;
  /** Remove the job directory (unless the options keep it). */
  removeDir(): Promise<void>;
  /** The job has left this agent: log it and tell the agent (once). */
  endWith(outcome: RunOutcome, error: string | null): void;
}

/** What supervising and reporting a running child needs from its executor settings. */
export interface RunSettings {
  timeLimitMs: number | undefined;
  progressRegex: RegExp | undefined;
  outputTypes: Readonly<Record<string, string>>;
  killArgv?: string[] | undefined;
}

/** The settings of a prepared job. */
export function runSettingsOf(prepared: PreparedJob): RunSettings {
  return { ...prepared.settings, killArgv: prepared.spec.killArgv };
}
