/**
 * The plain objects the journal hands out and accepts, and their mapping from SQLite rows. Every
 * row read is validated, so a file written by a newer agent with a state this one does not know
 * fails loudly instead of being misread.
 */
import { JournalError, type LockHolder } from './errors.js';
import { isJobState, isOutputState, type JobState, type OutputState } from './states.js';

/** What finish will send (`error: null` is success, a string is the error text), and what follows it. */
export interface FinishDecision {
  error: string | null;
  /**
   * After the finish the job goes back to the queue, to run again elsewhere: reset (when it is
   * ERRORED and ours) and release. Recovery reads this to re-deliver a finish the same way.
   */
  requeue: boolean;
}

/** One job of one server, as the journal holds it. Timestamps are ISO-8601 UTC strings. */
export interface JobRecord {
  serverUrl: string;
  jobPk: number;
  /** The node pk this attempt acquired the job as. */
  nodePk: number;
  templatePk: number | null;
  state: JobState;
  slot: number | null;
  jobDir: string | null;
  /** The child's pid (its process-group leader), once spawned. */
  pid: number | null;
  /** The child's start identity (`processStartIdentity`), to re-attach only to the same process. */
  pidStart: string | null;
  exitCode: number | null;
  exitSignal: string | null;
  /** The finish payload once decided; null while undecided. */
  finish: FinishDecision | null;
  /** How many times this node acquired the job (1 on the first attempt; +1 each re-use of the row). */
  attempts: number;
  /** How many times this node's child for the job entered `running`, over all attempts. */
  runs: number;
  /** How many times recovery found the job mid-run after an agent crash, over all attempts. */
  restarts: number;
  lastProgress: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  /** When the current state was entered. */
  stateSince: string;
  /** When each state was last entered during the current attempt. */
  stateTimes: Partial<Record<JobState, string>>;
}

/** Whether the child's exit status is known: such a job must never be run again for this attempt. */
export function hasExitStatus(job: Pick<JobRecord, 'exitCode' | 'exitSignal'>): boolean {
  return job.exitCode !== null || job.exitSignal !== null;
}

/**
 * Fields `transition()` and `record()` may set. A key that is absent (or `undefined`) is left as
 * it is; `null` clears it.
 */
export interface JobFields {
  nodePk?: number;
  templatePk?: number | null;
  slot?: number | null;
  jobDir?: string | null;
  pid?: number | null;
  pidStart?: string | null;
  exitCode?: number | null;
  exitSignal?: string | null;
  finish?: FinishDecision | null;
  /** In [0, 1]. Write it at the progress reporting interval, not per line: every write is an fsync. */
  lastProgress?: number | null;
  lastError?: string | null;
}

/** What `beginAcquire()` needs to know about a job. */
export interface NewJob {
  jobPk: number;
  nodePk: number;
  templatePk?: number | null;
  slot?: number | null;
  jobDir?: string | null;
}

/** An entry of a job's history: one state entered. */
export interface TransitionRecord {
  jobPk: number;
  attempt: number;
  /** null when the entry opened an attempt (`beginAcquire`). */
  from: JobState | null;
  to: JobState;
  at: string;
  /** Why, for `abandon()` and restarts. */
  note: string | null;
}

/** Identifies an output of a job, as the server does. */
export interface OutputKey {
  name: string;
  type: string;
}

/** An output to register: its file, and its size and SHA-256 only when they are known already (the log's). */
export interface NewOutput extends OutputKey {
  /** Local file the upload streams from. */
  path: string;
  size?: number | undefined;
  /** Lower-case hex. */
  sha256?: string | undefined;
}

export interface OutputRecord extends OutputKey {
  /** Local file the upload streams from. */
  path: string;
  /**
   * Size and SHA-256 (lower-case hex) of the bytes the server acknowledged: written with `uploaded`
   * (the upload hashes the file as it reads it). null before, unless known at registration.
   */
  size: number | null;
  sha256: string | null;
  serverUrl: string;
  jobPk: number;
  state: OutputState;
  /** How many times an upload was begun. */
  attempts: number;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

/** This agent's identity at one server. */
export interface ServerRecord {
  serverUrl: string;
  /** null before registration, or after a `400 Bad Node-Id` made the agent forget it. */
  nodePk: number | null;
  ip: string | null;
  index: number | null;
  /** The hardware last reported to the server (parsed JSON), to detect changes and PATCH. */
  hardware: unknown;
  registeredAt: string | null;
  lastContactAt: string | null;
  updatedAt: string;
}

/** A snapshot for `/status.json` and `ufdl-agent status`. */
export interface JournalStats {
  path: string;
  schemaVersion: number;
  /** The server the counts are for; null when a reader counts every server in the file. */
  serverUrl: string | null;
  /** This agent's node pk at `serverUrl` (null when unknown or when counting every server). */
  nodePk: number | null;
  /** Last successful contact with `serverUrl` (the latest of all servers when counting every one). */
  lastContactAt: string | null;
  jobs: {
    total: number;
    unfinished: number;
    byState: Record<JobState, number>;
    /** Unfinished jobs of *other* servers than `serverUrl` (always 0 when counting every server). */
    unfinishedElsewhere: number;
  };
  /** Outputs of unfinished jobs, by upload state. */
  outputs: Record<OutputState, number>;
  /** Who holds the writer lock, as labelled in the journal, with a liveness check. */
  holder: (LockHolder & { alive: boolean }) | null;
  servers: ServerRecord[];
}

// ---- row mapping ----------------------------------------------------------------------------

export interface JobRow {
  server_url: string;
  job_pk: number;
  node_pk: number;
  template_pk: number | null;
  state: string;
  slot: number | null;
  job_dir: string | null;
  pid: number | null;
  pid_start: string | null;
  exit_code: number | null;
  exit_signal: string | null;
  finish_decided: number;
  finish_error: string | null;
  /** 1 when the finish decision requeues the job (schema 3). */
  finish_requeue: number;
  attempts: number;
  runs: number;
  restarts: number;
  last_progress: number | null;
  last_error: string | null;
  state_times: string;
  created_at: string;
  updated_at: string;
  state_since: string;
}

export function jobFromRow(row: JobRow): JobRecord {
  if (!isJobState(row.state)) {
    throw new JournalError(
      'JOURNAL_SCHEMA',
      `job ${row.job_pk} has state ${JSON.stringify(row.state)}, unknown to this version of ufdl-agent`,
    );
  }
  return {
    serverUrl: row.server_url,
    jobPk: row.job_pk,
    nodePk: row.node_pk,
    templatePk: row.template_pk,
    state: row.state,
    slot: row.slot,
    jobDir: row.job_dir,
    pid: row.pid,
    pidStart: row.pid_start,
    exitCode: row.exit_code,
    exitSignal: row.exit_signal,
    finish: row.finish_decided === 0 ? null : { error: row.finish_error, requeue: row.finish_requeue === 1 },
    attempts: row.attempts,
    runs: row.runs,
    restarts: row.restarts,
    lastProgress: row.last_progress,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    stateSince: row.state_since,
    stateTimes: JSON.parse(row.state_times) as Partial<Record<JobState, string>>,
  };
}

export interface OutputRow {
  server_url: string;
  job_pk: number;
  name: string;
  type: string;
  path: string;
  size: number | null;
  sha256: string | null;
  state: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export function outputFromRow(row: OutputRow): OutputRecord {
  if (!isOutputState(row.state)) {
    throw new JournalError(
      'JOURNAL_SCHEMA',
      `output ${row.name} of job ${row.job_pk} has state ${JSON.stringify(row.state)}, unknown to this version`,
    );
  }
  return {
    serverUrl: row.server_url,
    jobPk: row.job_pk,
    name: row.name,
    type: row.type,
    path: row.path,
    size: row.size,
    sha256: row.sha256,
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface ServerRow {
  server_url: string;
  node_pk: number | null;
  ip: string | null;
  node_index: number | null;
  hardware_json: string | null;
  registered_at: string | null;
  last_contact_at: string | null;
  updated_at: string;
}

export function serverFromRow(row: ServerRow): ServerRecord {
  return {
    serverUrl: row.server_url,
    nodePk: row.node_pk,
    ip: row.ip,
    index: row.node_index,
    hardware: row.hardware_json === null ? null : (JSON.parse(row.hardware_json) as unknown),
    registeredAt: row.registered_at,
    lastContactAt: row.last_contact_at,
    updatedAt: row.updated_at,
  };
}

export interface TransitionRow {
  job_pk: number;
  attempt: number;
  from_state: string | null;
  to_state: string;
  at: string;
  note: string | null;
}

export function transitionFromRow(row: TransitionRow): TransitionRecord {
  return {
    jobPk: row.job_pk,
    attempt: row.attempt,
    from: row.from_state as JobState | null,
    to: row.to_state as JobState,
    at: row.at,
    note: row.note,
  };
}

/**
 * The canonical form of a server URL, so `http://h:8000/` and `http://h:8000` key the same rows:
 * trailing slashes dropped, scheme and host lower-cased by the URL parser.
 */
export function normalizeServerUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new JournalError('JOURNAL_BAD_VALUE', `serverUrl ${JSON.stringify(url)} is not a URL`, { cause: err });
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}
