/**
 * Errors the journal throws. Callers branch on the class or on `code`, never on message text.
 */
import { hostname } from 'node:os';

/** Stable codes of {@link JournalError}. */
export type JournalErrorCode =
  /** A method was called after `close()`. */
  | 'JOURNAL_CLOSED'
  /** Another agent process (or another `Journal` in this process) holds the journal. */
  | 'JOURNAL_LOCKED'
  /** The file's schema is newer than this version knows, or is not a journal at all. */
  | 'JOURNAL_SCHEMA'
  /** `openReadOnly()` on a path with no file. */
  | 'JOURNAL_NOT_FOUND'
  /** No row for this job (of this server). */
  | 'JOURNAL_UNKNOWN_JOB'
  /** No row for this output of the job. */
  | 'JOURNAL_UNKNOWN_OUTPUT'
  /** An output was registered again with different content after its upload began. */
  | 'JOURNAL_OUTPUT_CONFLICT'
  /** A field value is out of range (negative pid, progress outside [0, 1], …). */
  | 'JOURNAL_BAD_VALUE';

export class JournalError extends Error {
  readonly code: JournalErrorCode;

  constructor(code: JournalErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JournalError';
    this.code = code;
  }
}

/**
 * A lifecycle was asked to take an edge it does not have. `from` is the state the journal holds
 * (read in the same transaction as the refused write), `to` the one that was attempted.
 */
export class IllegalStateError extends Error {
  /** Which lifecycle: a job's or an output upload's. */
  readonly machine: 'job' | 'output';
  /** What the lifecycle belongs to, e.g. `job 12` or `job 12 output model.zip (BLOB)`. */
  readonly subject: string;
  readonly from: string;
  readonly to: string;

  constructor(machine: 'job' | 'output', subject: string, from: string, to: string, allowed: readonly string[]) {
    const next = allowed.length === 0 ? 'none, it is terminal' : allowed.join(', ');
    super(`${subject}: illegal transition ${from} → ${to} (current state ${from}; allowed from ${from}: ${next})`);
    this.name = 'IllegalStateError';
    this.machine = machine;
    this.subject = subject;
    this.from = from;
    this.to = to;
  }
}

/** Who holds a journal's writer lock, as recorded in the journal's `agent_lock` row. */
export interface LockHolder {
  pid: number;
  /** The holder's process start identity (see `processStartIdentity`), or null off Linux. */
  pidStart: string | null;
  hostname: string;
  /** ISO-8601 time the lock was taken. */
  acquiredAt: string;
}

/** `openJournal()` found the journal held by a live agent. */
/**
 * Whether `err` is SQLite failing to write the journal file itself (disk full, an I/O error, the
 * file or its file system gone read-only), as opposed to a refused transition or a bug. After one,
 * the journal no longer says where a job stands, and only recovery can tell again.
 */
export function isJournalWriteFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return code === 'SQLITE_FULL' || code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY');
}

export class JournalLockedError extends JournalError {
  /** The recorded holder, when the journal names one (it may be mid-start and not yet have). */
  readonly holder: LockHolder | null;
  /** The journal file. */
  readonly path: string;

  constructor(path: string, holder: LockHolder | null, options?: { cause?: unknown; detail?: string }) {
    const who =
      holder === null
        ? 'another process'
        : `pid ${holder.pid} on ${holder.hostname} (since ${holder.acquiredAt})` +
          (holder.pid === process.pid && holder.hostname === hostname() ? ', this very process' : '');
    super(
      'JOURNAL_LOCKED',
      `The journal ${path} is in use by ${who}${options?.detail === undefined ? '' : ` (${options.detail})`}. Only one agent may use a journal at a time: stop the ` +
        `other agent, or give this one its own state directory.`,
      options,
    );
    this.name = 'JournalLockedError';
    this.holder = holder;
    this.path = path;
  }
}
