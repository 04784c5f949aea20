/**
 * The agent's crash-safe journal (docs/ARCHITECTURE.md, "The journal"): its own SQLite file, WAL,
 * `synchronous = FULL`.
 *
 * The rule: **write the intended transition before each HTTP call, and the result after it.** Every
 * method that writes does so in one immediate transaction that also checks the lifecycle edge, and
 * returns only after the commit is on disk; then it fires the matching `…:after-write` fail point.
 *
 * One agent process per journal (see lock.ts). All calls are synchronous: a commit costs one fsync,
 * so write progress at the reporting interval, not per line, and never in a hot loop.
 */
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { failPoint, injectedWriteFailure } from '../fail-points.js';
import { IllegalStateError, JournalError, type LockHolder } from './errors.js';
import type { JournalLock } from './lock.js';
import { SQL, applyFields, enterState, newAttemptRow } from './job-rows.js';
import { JournalView } from './queries.js';
import {
  hasExitStatus,
  jobFromRow,
  type FinishDecision,
  outputFromRow,
  type JobFields,
  type JobRecord,
  type JobRow,
  type NewJob,
  type NewOutput,
  type OutputKey,
  type OutputRecord,
  type OutputRow,
  type ServerRecord,
} from './records.js';
import { JOB_EDGES, OUTPUT_EDGES, isJobEdge, isOutputEdge, type JobState, type OutputState } from './states.js';
import { checkDigest, checkJobFields, checkNewOutput, checkPk } from './validate.js';

export interface JournalOptions {
  /** The SQLite file; its directory is created if needed. */
  path: string;
  /** The server this agent works for. Job rows and the node identity are keyed by it. */
  serverUrl: string;
  /**
   * Other addresses of the same server: entries journalled under one of them are taken over under
   * `serverUrl` at open (`aliases.ts`). @default []
   */
  otherServerUrls?: readonly string[];
  /** Transitions are logged at debug level as `{jobPk, from, to}`. */
  logger?: Logger;
  /** Clock for timestamps. @default () => new Date() */
  now?: () => Date;
  /**
   * Least time between two writes of the last-contact time (it is always current in memory, and
   * flushed by `close()`), so a busy poll loop does not fsync on every answer.
   * @default 5000
   */
  contactWriteIntervalMs?: number;
}

/** What `openJournal()` hands the constructor once the file is locked and migrated. */
export interface OpenedJournal {
  db: Database.Database;
  /** Resolved path. */
  path: string;
  /** Normalized server URL. */
  serverUrl: string;
  lock: JournalLock;
  /** This process's label, written into `agent_lock`. */
  label: LockHolder;
  /** Called once, last, by `close()`. */
  onClosed: () => void;
}

/** The settings key of {@link Journal.identity}. */
const AGENT_IDENTITY_KEY = 'agent-identity';

export class Journal extends JournalView {
  /** The (normalized) server URL this journal writes for. */
  readonly serverUrl: string;
  readonly #lock: JournalLock;
  readonly #onClosed: () => void;
  readonly #log: Logger | undefined;
  readonly #now: () => Date;
  readonly #contactWriteIntervalMs: number;
  #lastContact: Date | null = null;
  #lastContactWrittenMs = Number.NEGATIVE_INFINITY;
  #contactDirty = false;

  /** Use {@link openJournal}, which takes the lock and migrates the file first. */
  constructor(opened: OpenedJournal, options: JournalOptions) {
    super(opened.db, opened.path, opened.serverUrl);
    this.serverUrl = opened.serverUrl;
    this.#lock = opened.lock;
    this.#onClosed = opened.onClosed;
    this.#log = options.logger;
    this.#now = options.now ?? (() => new Date());
    this.#contactWriteIntervalMs = options.contactWriteIntervalMs ?? 5000;
    const label = opened.label;
    this.stmt(
      `INSERT OR REPLACE INTO agent_lock (id, pid, pid_start, hostname, acquired_at) VALUES (1, ?, ?, ?, ?)`,
    ).run(label.pid, label.pidStart, label.hostname, label.acquiredAt);
    const contact = this.server()?.lastContactAt;
    if (contact != null) this.#lastContact = new Date(contact);
  }

  // ---- jobs -----------------------------------------------------------------------------------

  /**
   * Intent to acquire `job.jobPk`: creates its row in `acquiring` (attempts = 1), or re-uses a `done`
   * row as a new attempt (attempts + 1; per-attempt fields and outputs cleared; `runs` and
   * `restarts` kept). Throws `IllegalStateError` if the job is already unfinished here.
   */
  beginAcquire(job: NewJob): JobRecord {
    checkPk('jobPk', job.jobPk);
    checkJobFields({ nodePk: job.nodePk, templatePk: job.templatePk ?? null, slot: job.slot ?? null, jobDir: job.jobDir ?? null });
    const record = this.#tx(() => this.#insertAttempt(job, 'acquiring', (row) => row, null));
    this.#log?.debug({ jobPk: job.jobPk, from: null, to: 'acquiring', attempt: record.attempts }, 'journal transition');
    failPoint('acquiring:after-write');
    return record;
  }

  /**
   * Intent to finish a job this journal holds no entry for — a node's `current_job` found at start-up
   * (the reference rule) — with `finish`: creates its row (or re-uses a `done` row as a new attempt,
   * as {@link beginAcquire} does) straight in `finishing`, so that an agent killed before the job is
   * back in the queue leaves the next start the rest of the way (the node names the job no more once
   * the finish landed). Throws `IllegalStateError` if the job is already unfinished here.
   */
  beginFinish(job: NewJob, finish: FinishDecision): JobRecord {
    checkPk('jobPk', job.jobPk);
    checkJobFields({ nodePk: job.nodePk, slot: job.slot ?? null, finish });
    const record = this.#tx(() =>
      this.#insertAttempt(
        job,
        'finishing',
        (row, at) => enterState(applyFields({ ...row, state_times: '{}' }, { finish }, at), 'finishing', at),
        'a current_job the journal did not know',
      ),
    );
    this.#log?.debug({ jobPk: job.jobPk, from: null, to: 'finishing', attempt: record.attempts }, 'journal transition');
    failPoint('finishing:after-write');
    return record;
  }

  /**
   * In a transaction: a new attempt of `job` entering `state` — its row created, or a `done` row
   * re-used (its outputs cleared) — as `shape` makes it from the fresh attempt row. Throws
   * `IllegalStateError` if the job is already unfinished here.
   */
  #insertAttempt(job: NewJob, state: JobState, shape: (row: JobRow, at: string) => JobRow, note: string | null): JobRecord {
    const at = this.#iso();
    const existing = this.#row(job.jobPk);
    if (existing !== undefined && existing.state !== 'done') {
      throw new IllegalStateError('job', this.#subject(job.jobPk), existing.state, state, JOB_EDGES[existing.state as JobState] ?? []);
    }
    if (existing !== undefined) this.stmt(`DELETE FROM outputs WHERE server_url = ? AND job_pk = ?`).run(this.serverUrl, job.jobPk);
    const row = shape(newAttemptRow(this.serverUrl, job, existing, at), at);
    this.stmt(SQL.insertJob).run(row);
    this.#history(row, null, at, note);
    return jobFromRow(row);
  }

  /**
   * Move the job to `to` and set `fields`, in one transaction that checks the edge. Throws
   * `IllegalStateError` (naming the current and the attempted state) when `current → to` is not in
   * `JOB_EDGES`, `JOURNAL_UNKNOWN_JOB` when there is no row.
   */
  transition(jobPk: number, to: JobState, fields: JobFields = {}): JobRecord {
    checkJobFields(fields);
    let from: JobState | undefined;
    let exitNew = false;
    const record = this.#tx(() => {
      const row = this.#requireRow(jobPk);
      from = row.state as JobState;
      if (!isJobEdge(from, to)) throw new IllegalStateError('job', this.#subject(jobPk), from, to, JOB_EDGES[from] ?? []);
      const at = this.#iso();
      const next = enterState(applyFields(row, fields, at), to, at);
      exitNew = !hasExitStatus(jobFromRow(row)) && hasExitStatus(jobFromRow(next));
      this.#update(next);
      this.#history(next, from, at, null);
      return jobFromRow(next);
    });
    this.#log?.debug({ jobPk, from, to }, 'journal transition');
    if (exitNew) failPoint('child-exit:after-write');
    failPoint(`${to}:after-write`);
    return record;
  }

  /** Set `fields` without changing state (pid, progress, exit status, finish decision, last error). */
  record(jobPk: number, fields: JobFields): JobRecord {
    checkJobFields(fields);
    let exitNew = false;
    const record = this.#tx(() => {
      const row = this.#requireRow(jobPk);
      const next = applyFields(row, fields, this.#iso());
      exitNew = !hasExitStatus(jobFromRow(row)) && hasExitStatus(jobFromRow(next));
      if (exitNew && injectedWriteFailure('child-exit:write-full')) throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      if (fields.finish !== undefined && jobFromRow(row).finish === null && injectedWriteFailure('stop-decision:write-full')) {
        throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      }
      this.#update(next);
      return jobFromRow(next);
    });
    if (exitNew) failPoint('child-exit:after-write');
    return record;
  }

  /**
   * Whether the journal can be written again: one small real write (this process's lock label
   * rewritten), committed like every other. Throws what the write threw (SQLITE_FULL while the disk
   * is still full).
   */
  probeWrite(): void {
    this.#tx(() => {
      this.stmt(`UPDATE agent_lock SET acquired_at = acquired_at WHERE id = 1 AND pid = ?`).run(process.pid);
    });
  }

  /** Count one more restart: recovery found the job mid-run after the agent died. */
  noteRestart(jobPk: number): JobRecord {
    return this.#tx(() => {
      const row = this.#requireRow(jobPk);
      const next = { ...row, restarts: row.restarts + 1, updated_at: this.#iso() };
      this.#update(next);
      return jobFromRow(next);
    });
  }

  /**
   * Terminal bookkeeping: move an unfinished job straight to `done`, recording `reason` as its last
   * error and in its history — for when the server shows the job is gone or no longer ours (404,
   * aborted, re-assigned), so nothing more can be reported. Not for the normal paths, which must
   * go through `transition()`. Throws `IllegalStateError` if it is already done.
   */
  abandon(jobPk: number, reason: string): JobRecord {
    let from: JobState | undefined;
    const record = this.#tx(() => {
      const row = this.#requireRow(jobPk);
      from = row.state as JobState;
      if (from === 'done') throw new IllegalStateError('job', this.#subject(jobPk), from, 'done', JOB_EDGES.done);
      const at = this.#iso();
      const next = enterState(applyFields(row, { lastError: reason }, at), 'done', at);
      this.#update(next);
      this.#history(next, from, at, reason);
      return jobFromRow(next);
    });
    this.#log?.debug({ jobPk, from, to: 'done', reason }, 'journal transition (abandoned)');
    failPoint('done:after-write');
    return record;
  }

  /** Delete `done` jobs last updated before `olderThan`, with their outputs and history. */
  pruneDone(olderThan: Date): number {
    return this.#tx(() => {
      const params = { scope: this.serverUrl, before: olderThan.toISOString() };
      const doomed = `SELECT job_pk FROM jobs WHERE server_url = @scope AND state = 'done' AND updated_at < @before`;
      this.stmt(`DELETE FROM transitions WHERE server_url = @scope AND job_pk IN (${doomed})`).run(params);
      return this.stmt(`DELETE FROM jobs WHERE server_url = @scope AND state = 'done' AND updated_at < @before`).run(params)
        .changes;
    });
  }

  // ---- outputs --------------------------------------------------------------------------------

  /**
   * Record an output the child left (idempotent): a new one starts `pending`; the same file (and
   * digest, when one is given) again is a no-op; anything else replaces a `pending` or `failed` one
   * (back to `pending`) and is a `JOURNAL_OUTPUT_CONFLICT` once its upload began. Register every
   * output *before* moving the job to `uploading`, so recovery in that state knows them all. Its size
   * and SHA-256 are usually unknown here: the upload learns them (see `markOutput`).
   */
  registerOutput(jobPk: number, output: NewOutput): OutputRecord {
    const out = checkNewOutput(output);
    let wrote = false;
    const record = this.#tx(() => {
      this.#requireRow(jobPk);
      const at = this.#iso();
      const existing = this.#outputRow(jobPk, out);
      if (existing !== undefined && existing.path === out.path && (out.sha256 === null || (existing.size === out.size && existing.sha256 === out.sha256))) {
        return outputFromRow(existing);
      }
      if (existing !== undefined && existing.state !== 'pending' && existing.state !== 'failed') {
        throw new JournalError(
          'JOURNAL_OUTPUT_CONFLICT',
          `${this.#outputSubject(jobPk, out)} is ${existing.state} (file ${existing.path}, sha256 ${existing.sha256 ?? 'not yet known'}); cannot register different content`,
        );
      }
      const row: OutputRow = {
        server_url: this.serverUrl,
        job_pk: jobPk,
        ...out,
        state: 'pending',
        attempts: existing?.attempts ?? 0,
        last_error: existing?.last_error ?? null,
        created_at: existing?.created_at ?? at,
        updated_at: at,
      };
      this.stmt(SQL.upsertOutput).run(row);
      wrote = true;
      return outputFromRow(row);
    });
    if (wrote) failPoint('output-pending:after-write');
    return record;
  }

  /**
   * Move one output's upload to `to` (`uploading` is the intent before the POST and counts an
   * attempt; `failed` keeps `error`; `uploaded` clears it and records `digest`, the size and SHA-256
   * of the bytes the server acknowledged — required unless registration knew them). Throws
   * `IllegalStateError` for an edge not in `OUTPUT_EDGES`, `JOURNAL_UNKNOWN_OUTPUT` for an
   * unregistered output, `JOURNAL_BAD_VALUE` for an `uploaded` without a digest.
   */
  markOutput(jobPk: number, key: OutputKey, to: OutputState, options: { error?: string; digest?: { size: number; sha256: string } } = {}): OutputRecord {
    const digest = options.digest === undefined ? undefined : checkDigest(options.digest);
    const record = this.#tx(() => {
      const row = this.#outputRow(jobPk, key);
      if (row === undefined) {
        throw new JournalError('JOURNAL_UNKNOWN_OUTPUT', `${this.#outputSubject(jobPk, key)} is not registered`);
      }
      const from = row.state as OutputState;
      if (!isOutputEdge(from, to)) {
        throw new IllegalStateError('output', this.#outputSubject(jobPk, key), from, to, OUTPUT_EDGES[from] ?? []);
      }
      const known = digest ?? (row.sha256 === null ? undefined : { size: row.size, sha256: row.sha256 });
      if (to === 'uploaded' && known === undefined) {
        throw new JournalError('JOURNAL_BAD_VALUE', `${this.#outputSubject(jobPk, key)}: an uploaded output needs the size and sha256 of what was sent`);
      }
      const next: OutputRow = {
        ...row,
        ...(to === 'uploaded' ? known : {}),
        state: to,
        attempts: row.attempts + (to === 'uploading' ? 1 : 0),
        last_error: to === 'failed' ? (options.error ?? 'upload failed') : to === 'uploaded' ? null : row.last_error,
        updated_at: this.#iso(),
      };
      this.stmt(SQL.updateOutputState).run(next);
      return outputFromRow(next);
    });
    failPoint(`output-${to}:after-write`);
    return record;
  }

  /**
   * Record how far the job's live log was sent (src/agent/logs/), for its current attempt. Not a
   * lifecycle step: an offset behind the server's only makes the next append resend bytes the
   * server already has, which it ignores, so callers write it at an interval, not per append.
   */
  recordLiveLog(jobPk: number, state: { sent: number; maxBytes: number }): void {
    this.#tx(() => {
      const row = this.#requireRow(jobPk);
      this.stmt(
        `INSERT INTO live_logs (server_url, job_pk, attempt, sent, max_bytes, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (server_url, job_pk) DO UPDATE SET attempt = excluded.attempt, sent = excluded.sent,
           max_bytes = excluded.max_bytes, updated_at = excluded.updated_at`,
      ).run(this.serverUrl, jobPk, row.attempts, state.sent, state.maxBytes, this.#iso());
    });
  }

  // ---- node identity, settings, contact --------------------------------------------------------

  /** Record the node this agent registered as (or found) at the server, and what it reported. */
  saveNode(node: { nodePk: number; ip: string; index: number; hardware?: unknown }): ServerRecord {
    checkPk('nodePk', node.nodePk);
    this.#tx(() => {
      const at = this.#iso();
      this.#upsertServer(at);
      this.stmt(
        `UPDATE servers SET node_pk = @nodePk, ip = @ip, node_index = @index, updated_at = @at,
           registered_at = CASE WHEN node_pk IS @nodePk THEN registered_at ELSE @at END,
           hardware_json = CASE WHEN @hasHardware THEN @hardware ELSE hardware_json END
         WHERE server_url = @scope`,
      ).run({
        scope: this.serverUrl,
        nodePk: node.nodePk,
        ip: node.ip,
        index: node.index,
        at,
        hasHardware: node.hardware === undefined ? 0 : 1,
        hardware: node.hardware === undefined ? null : JSON.stringify(node.hardware),
      });
    });
    failPoint('register:after-write');
    return this.server()!;
  }

  /** Record the hardware last reported to the server (compare with it to decide on a PATCH). */
  saveHardware(hardware: unknown): ServerRecord {
    this.#tx(() => {
      const at = this.#iso();
      this.#upsertServer(at);
      this.stmt(`UPDATE servers SET hardware_json = ?, updated_at = ? WHERE server_url = ?`).run(
        JSON.stringify(hardware),
        at,
        this.serverUrl,
      );
    });
    return this.server()!;
  }

  /** Forget the node pk (after `400 Bad Node-Id`), keeping ip, index and hardware. */
  forgetNode(): void {
    this.stmt(`UPDATE servers SET node_pk = NULL, updated_at = ? WHERE server_url = ?`).run(this.#iso(), this.serverUrl);
  }

  /**
   * This agent's identity: `initial` the first time it is asked for, the stored value ever after. It
   * is what makes the agent the same one across restarts — the journal, not the host it runs on:
   * an agent in a container that is re-created (a new hostname) is still the one that labelled its
   * job containers, and finds them again.
   */
  /** Whether {@link identity} was ever asked for (a journal of an earlier version has none). */
  hasIdentity(): boolean {
    return this.getSetting(AGENT_IDENTITY_KEY) !== undefined;
  }

  identity(initial: string): string {
    const stored = this.getSetting(AGENT_IDENTITY_KEY);
    if (stored !== undefined) return stored;
    this.setSetting(AGENT_IDENTITY_KEY, initial);
    return initial;
  }

  /** Set a small piece of agent state; `null` deletes it. */
  setSetting(key: string, value: string | null): void {
    if (value === null) this.stmt(`DELETE FROM settings WHERE key = ?`).run(key);
    else {
      this.stmt(
        `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ).run(key, value, this.#iso());
    }
  }

  /**
   * Note a successful exchange with the server. Kept in memory at once; written at most every
   * `contactWriteIntervalMs` (and by `close()`).
   */
  noteContact(at: Date = this.#now()): void {
    this.#lastContact = at;
    this.#contactDirty = true;
    if (at.getTime() - this.#lastContactWrittenMs >= this.#contactWriteIntervalMs) this.#flushContact();
  }

  /** The last successful contact with the server, or null if none is known. */
  lastContact(): Date | null {
    return this.#lastContact;
  }

  protected override lastContactOf(server: ServerRecord): string | null {
    if (server.serverUrl === this.serverUrl && this.#lastContact !== null) return this.#lastContact.toISOString();
    return server.lastContactAt;
  }

  /**
   * Flush the last contact, drop the lock label, close the file and release the lock. Idempotent;
   * each step runs even if an earlier one failed.
   */
  override close(): void {
    if (this.closed) return;
    const steps: [string, () => void][] = [
      ['flush last contact', () => this.#contactDirty && this.#flushContact()],
      ['remove lock label', () => this.stmt(`DELETE FROM agent_lock WHERE id = 1 AND pid = ?`).run(process.pid)],
      ['close database', () => super.close()],
      ['release lock', () => this.#lock.release()],
    ];
    for (const [name, step] of steps) {
      try {
        step();
      } catch (err) {
        this.#log?.warn({ err, step: name }, 'journal close step failed');
      }
    }
    this.#onClosed();
  }

  // ---- internals ------------------------------------------------------------------------------

  #flushContact(): void {
    if (this.#lastContact === null) return;
    const at = this.#lastContact.toISOString();
    this.#tx(() => {
      this.#upsertServer(at);
      this.stmt(`UPDATE servers SET last_contact_at = ? WHERE server_url = ?`).run(at, this.serverUrl);
    });
    this.#lastContactWrittenMs = this.#lastContact.getTime();
    this.#contactDirty = false;
  }

  #upsertServer(at: string): void {
    this.stmt(`INSERT INTO servers (server_url, updated_at) VALUES (?, ?) ON CONFLICT (server_url) DO NOTHING`).run(
      this.serverUrl,
      at,
    );
  }

  #tx<T>(fn: () => T): T {
    return this.db().transaction(fn).immediate();
  }

  #iso(): string {
    return this.#now().toISOString();
  }

  #subject(jobPk: number): string {
    return `job ${jobPk} of ${this.serverUrl}`;
  }

  #outputSubject(jobPk: number, key: OutputKey): string {
    return `job ${jobPk} output ${key.name} (${key.type})`;
  }

  #row(jobPk: number): JobRow | undefined {
    return this.stmt(SQL.selectJob).get(this.serverUrl, jobPk) as JobRow | undefined;
  }

  #requireRow(jobPk: number): JobRow {
    const row = this.#row(jobPk);
    if (row === undefined) throw new JournalError('JOURNAL_UNKNOWN_JOB', `${this.#subject(jobPk)} is not in the journal`);
    return row;
  }

  #outputRow(jobPk: number, key: OutputKey): OutputRow | undefined {
    return this.stmt(SQL.selectOutput).get(this.serverUrl, jobPk, key.name, key.type) as OutputRow | undefined;
  }

  #update(row: JobRow): void {
    this.stmt(SQL.updateJob).run(row);
  }

  #history(row: JobRow, from: JobState | null, at: string, note: string | null): void {
    this.stmt(SQL.insertTransition).run(row.server_url, row.job_pk, row.attempts, from, row.state, at, note);
  }
}
