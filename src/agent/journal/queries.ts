/**
 * The read side of the journal, shared by the agent's writer (`Journal`) and the read-only opener
 * the `status` command uses (`JournalReader`). A view is scoped to one server URL, or to every
 * server in the file when the scope is null (a reader that does not know the agent's config).
 */
import type Database from 'better-sqlite3';
import { JournalError, type LockHolder } from './errors.js';
import { isProcessAlive } from '../child/identity.js';
import {
  jobFromRow,
  outputFromRow,
  serverFromRow,
  transitionFromRow,
  type JobRecord,
  type JobRow,
  type JournalStats,
  type OutputRecord,
  type OutputRow,
  type ServerRecord,
  type ServerRow,
  type TransitionRecord,
  type TransitionRow,
} from './records.js';
import { schemaVersionOf } from './schema.js';
import { JOB_STATES, OUTPUT_STATES, type JobState, type OutputState } from './states.js';

const SCOPE = '(@scope IS NULL OR server_url = @scope)';

export class JournalView {
  readonly path: string;
  /** The server this view is for; null: every server in the file. */
  readonly scope: string | null;
  #db: Database.Database | null;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database, path: string, scope: string | null) {
    this.#db = db;
    this.path = path;
    this.scope = scope;
  }

  /** True once `close()` has run. */
  get closed(): boolean {
    return this.#db === null;
  }

  /** The job's row (of the scoped server; the most recently updated one when unscoped). */
  get(jobPk: number): JobRecord | undefined {
    const row = this.stmt(`SELECT * FROM jobs WHERE ${SCOPE} AND job_pk = @jobPk ORDER BY updated_at DESC LIMIT 1`).get({
      scope: this.scope,
      jobPk,
    }) as JobRow | undefined;
    return row === undefined ? undefined : jobFromRow(row);
  }

  /** Every job not `done`, by job pk. Recovery walks these before the agent polls. */
  unfinished(): JobRecord[] {
    const rows = this.stmt(`SELECT * FROM jobs WHERE ${SCOPE} AND state <> 'done' ORDER BY server_url, job_pk`).all({
      scope: this.scope,
    }) as JobRow[];
    return rows.map(jobFromRow);
  }

  /**
   * Every job not `done`, of every server in the file whatever the scope: an entry of a server the
   * agent works for no more (its `server.url` changed) still owns its job directory, with its outputs
   * and perhaps a running child, until the agent works for that server again and recovers it.
   */
  unfinishedOfEveryServer(): JobRecord[] {
    const rows = this.stmt(`SELECT * FROM jobs WHERE state <> 'done' ORDER BY server_url, job_pk`).all() as JobRow[];
    return rows.map(jobFromRow);
  }

  /** The `limit` most recently updated jobs, newest first (for `ufdl-agent status`). */
  recent(limit = 20): JobRecord[] {
    const rows = this.stmt(`SELECT * FROM jobs WHERE ${SCOPE} ORDER BY updated_at DESC, job_pk DESC LIMIT @limit`).all({
      scope: this.scope,
      limit,
    }) as JobRow[];
    return rows.map(jobFromRow);
  }

  /** Every state the job entered, oldest first, over all its attempts. */
  history(jobPk: number): TransitionRecord[] {
    const rows = this.stmt(`SELECT * FROM transitions WHERE ${SCOPE} AND job_pk = @jobPk ORDER BY id`).all({
      scope: this.scope,
      jobPk,
    }) as TransitionRow[];
    return rows.map(transitionFromRow);
  }

  /** The job's outputs, in registration order. */
  outputs(jobPk: number): OutputRecord[] {
    const rows = this.stmt(`SELECT * FROM outputs WHERE ${SCOPE} AND job_pk = @jobPk ORDER BY rowid`).all({
      scope: this.scope,
      jobPk,
    }) as OutputRow[];
    return rows.map(outputFromRow);
  }

  /**
   * The job's outputs that still need an upload: `pending`, `uploading` (outcome unknown: ask the
   * server, or upload again) and `failed` (may be retried), in registration order.
   */
  pendingOutputs(jobPk: number): OutputRecord[] {
    return this.outputs(jobPk).filter((output) => output.state !== 'uploaded');
  }

  /**
   * How far the live log of the job's current attempt was sent, and its cap (src/agent/logs/);
   * undefined when it was never sent in this attempt.
   */
  liveLog(jobPk: number): { sent: number; maxBytes: number } | undefined {
    const row = this.stmt(
      `SELECT l.sent, l.max_bytes FROM live_logs l JOIN jobs j USING (server_url, job_pk)
       WHERE (@scope IS NULL OR l.server_url = @scope) AND l.job_pk = @jobPk AND l.attempt = j.attempts
       ORDER BY l.updated_at DESC LIMIT 1`,
    ).get({ scope: this.scope, jobPk }) as { sent: number; max_bytes: number } | undefined;
    return row === undefined ? undefined : { sent: row.sent, maxBytes: row.max_bytes };
  }

  /** The agent's identity at the scoped server (undefined before the first registration). */
  server(): ServerRecord | undefined {
    if (this.scope === null) return undefined;
    const row = this.stmt(`SELECT * FROM servers WHERE server_url = @scope`).get({ scope: this.scope }) as
      | ServerRow
      | undefined;
    return row === undefined ? undefined : serverFromRow(row);
  }

  /** The agent's identity at every server it has talked to. */
  servers(): ServerRecord[] {
    return (this.stmt(`SELECT * FROM servers ORDER BY server_url`).all() as ServerRow[]).map(serverFromRow);
  }

  getSetting(key: string): string | undefined {
    const row = this.stmt(`SELECT value FROM settings WHERE key = ?`).get(key) as { value: string } | undefined;
    return row?.value;
  }

  /** Who holds the writer lock, as labelled in the journal (null when no agent has it open). */
  holder(): LockHolder | null {
    const row = this.stmt(`SELECT * FROM agent_lock WHERE id = 1`).get() as
      | { pid: number; pid_start: string | null; hostname: string; acquired_at: string }
      | undefined;
    return row === undefined
      ? null
      : { pid: row.pid, pidStart: row.pid_start, hostname: row.hostname, acquiredAt: row.acquired_at };
  }

  stats(): JournalStats {
    const byState = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const counts = this.stmt(`SELECT state, count(*) AS n FROM jobs WHERE ${SCOPE} GROUP BY state`).all({
      scope: this.scope,
    }) as { state: string; n: number }[];
    let total = 0;
    for (const { state, n } of counts) {
      total += n;
      if (state in byState) byState[state as JobState] = n;
    }
    const outputs = Object.fromEntries(OUTPUT_STATES.map((s) => [s, 0])) as Record<OutputState, number>;
    const outputCounts = this.stmt(
      `SELECT o.state, count(*) AS n FROM outputs o JOIN jobs j USING (server_url, job_pk)
       WHERE (@scope IS NULL OR o.server_url = @scope) AND j.state <> 'done' GROUP BY o.state`,
    ).all({ scope: this.scope }) as { state: string; n: number }[];
    for (const { state, n } of outputCounts) if (state in outputs) outputs[state as OutputState] = n;
    const elsewhere =
      this.scope === null
        ? 0
        : (
            this.stmt(`SELECT count(*) AS n FROM jobs WHERE server_url <> ? AND state <> 'done'`).get(this.scope) as {
              n: number;
            }
          ).n;
    const servers = this.servers();
    const own = this.scope === null ? undefined : servers.find((s) => s.serverUrl === this.scope);
    const contacts = (own === undefined ? (this.scope === null ? servers : []) : [own])
      .map((s) => this.lastContactOf(s))
      .filter((t): t is string => t !== null)
      .sort();
    const holder = this.holder();
    return {
      path: this.path,
      schemaVersion: schemaVersionOf(this.db()),
      serverUrl: this.scope,
      nodePk: own?.nodePk ?? null,
      lastContactAt: contacts.at(-1) ?? null,
      jobs: { total, unfinished: total - byState.done, byState, unfinishedElsewhere: elsewhere },
      outputs,
      holder: holder === null ? null : { ...holder, alive: isProcessAlive(holder.pid, holder.pidStart) },
      servers,
    };
  }

  /** The SQLite settings in effect on this connection (WAL and FULL for the writer). */
  sqliteSettings(): { journalMode: string; synchronous: number; schemaVersion: number } {
    const db = this.db();
    return {
      journalMode: db.pragma('journal_mode', { simple: true }) as string,
      synchronous: db.pragma('synchronous', { simple: true }) as number,
      schemaVersion: schemaVersionOf(db),
    };
  }

  /** Hook for the writer, which knows a fresher last-contact time than the one written. */
  protected lastContactOf(server: ServerRecord): string | null {
    return server.lastContactAt;
  }

  /** Close the connection; later calls are no-ops, later queries throw `JOURNAL_CLOSED`. */
  close(): void {
    const db = this.#db;
    if (db === null) return;
    this.#db = null;
    this.#statements.clear();
    db.close();
  }

  protected db(): Database.Database {
    if (this.#db === null) throw new JournalError('JOURNAL_CLOSED', `The journal ${this.path} is closed.`);
    return this.#db;
  }

  /** A prepared statement, prepared once per connection. */
  protected stmt(sql: string): Database.Statement {
    const db = this.db();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
