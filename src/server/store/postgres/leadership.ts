/**
 * One replica at a time for work that must not run twice at once (the lost-node sweep): the replica
 * that holds an advisory lock leads. The lock lives as long as the connection that took it, so when
 * the leading replica dies, is killed or loses its connection, PostgreSQL frees the lock and the next
 * replica to try takes it: no lease to expire, no clock to trust.
 *
 * A leader that is frozen rather than dead (SIGSTOPped, its VM paused) keeps its connection open —
 * its kernel still answers — and would keep the lock, and the sweep, until it resumed. So the lock is
 * a transaction's (`pg_try_advisory_xact_lock`), taken in a transaction the leader keeps open and busy
 * with its checks, under `idle_in_transaction_session_timeout`: a leader silent for that long has its
 * session ended by the database, which frees the lock.
 *
 * Every `checkMs` a follower tries the lock (never waiting) and the leader checks that its
 * connection still answers; a leader whose connection failed stops leading at once.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { timedQuery } from './connection.js';

export interface LeadershipOptions {
  /** The advisory-lock key, two int4s. */
  key: readonly [number, number];
  /** How often to try the lock, and to check a held one. */
  checkMs: number;
  log: Pick<Logger, 'info' | 'warn'>;
  /** What the lock is for, in log lines. */
  what: string;
  /**
   * How long one of its statements may take. A connection that stops answering (its network gone
   * silent) counts as failed after this, so the replica stops leading and its close never hangs.
   * @default 5000
   */
  statementTimeoutMs?: number;
  /**
   * How long a leader may go without a check before the database ends its session, freeing the lock
   * for another replica (a frozen leader). Several checks long, so that a busy event loop does not
   * lose the lead for nothing.
   * @default max(4 × checkMs, 15 s)
   */
  silentLeaderMs?: number;
}

export class AdvisoryLeadership {
  #held: pg.PoolClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #checking: Promise<void> = Promise.resolve();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: LeadershipOptions,
  ) {}

  /** Start trying at once; `isLeader()` answers as soon as the first try is done. */
  static async start(pool: pg.Pool, options: LeadershipOptions): Promise<AdvisoryLeadership> {
    const leadership = new AdvisoryLeadership(pool, options);
    await leadership.#check();
    leadership.#arm();
    return leadership;
  }

  isLeader(): boolean {
    return this.#held !== undefined;
  }

  #arm(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#checking = this.#check().finally(() => this.#arm());
    }, this.options.checkMs);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    if (this.#closed) return;
    if (this.#held) {
      try {
        await this.#held.query(this.#statement('SELECT 1'));
      } catch (err) {
        this.#lose(err);
      }
      return;
    }
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query(this.#statement('BEGIN'));
      const silentMs = this.options.silentLeaderMs ?? Math.max(4 * this.options.checkMs, 15_000);
      await client.query(this.#statement(`SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(silentMs)}`));
      const { rows } = await client.query<{ ok: boolean }>(this.#statement('SELECT pg_try_advisory_xact_lock($1, $2) AS ok', [...this.options.key]));
      if (rows[0]?.ok === true && !this.#closed) {
        this.#held = client;
        // The session ended by the database (a silent leader, a restart) arrives as an error here.
        client.on('error', (err) => this.#lose(err));
        this.options.log.info({ lock: this.options.what }, 'this replica now leads');
        return;
      }
      await client.query(this.#statement('ROLLBACK'));
      client.release();
    } catch (err) {
      client?.release(err as Error);
      this.options.log.warn({ err, lock: this.options.what }, 'could not try the leadership lock');
    }
  }

  #statement(text: string, values: unknown[] = []): pg.QueryConfig {
    return timedQuery(text, values, this.options.statementTimeoutMs ?? 5_000);
  }

  #lose(err: unknown): void {
    const client = this.#held;
    if (!client) return;
    this.#held = undefined;
    // Destroyed, not returned to the pool: the session (and any lock it still holds) must end.
    client.release(err instanceof Error ? err : new Error(String(err)));
    this.options.log.warn({ err, lock: this.options.what }, 'this replica no longer leads: its connection failed');
  }

  /** Stop trying; a held lock is given up at once so another replica can lead. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#checking;
    const client = this.#held;
    this.#held = undefined;
    if (!client) return;
    try {
      // The transaction's end frees its lock.
      await client.query(this.#statement('ROLLBACK'));
      client.release();
    } catch (err) {
      client.release(err as Error);
    }
  }
}
