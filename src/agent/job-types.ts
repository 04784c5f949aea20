/**
 * The shapes a {@link JobRunner} trades in: how a job left the agent, what the runner tells the
 * agent, what it depends on, and the executor settings it supervises and reports with.
 */
import type { ExecutorPort, JournalPort, NodeApi } from './ports.js';
import type { PreparedJob } from './executors/types.js';
import type { JobRunner } from './job-runner.js';
import type { ResolvedAgentOptions } from './options.js';
import type { ProgressUpdate } from './progress/update.js';
import type { SlotSpec } from './slots.js';

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

export interface RunnerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
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
    'workDir' | 'cancelCheckIntervalMs' | 'progressIntervalMs' | 'killGraceMs' | 'keepJobDirs' | 'serverUrl'
  >;
  /** Watch cancellation over the web-socket (the server authenticates watchers). */
  useWebSocket: boolean;
  slot: SlotSpec;
  log: RunnerLogger;
  hooks: RunnerHooks;
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
