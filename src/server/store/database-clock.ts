/**
 * The clock node heartbeats (`nodes.last_seen`) are stamped with and the lost-node sweep compares
 * them against: one clock for every server process, so that no difference between two of them can
 * make a node look silent longer than it was.
 *
 * Replicas sharing a PostgreSQL database run on machines whose clocks may disagree. Stamped with the
 * clock of the replica a node talks to and swept against the clock of the leading replica, a
 * heartbeat looked older than it was by however much the first clock lagged: past the agents'
 * `fence_margin`, the sweep gave a running job to another node before its agent had fenced it. On
 * PostgreSQL both therefore read the database's clock. On SQLite the server is one process with one
 * clock, read without a statement as before.
 *
 * Either way the time is milliseconds since the epoch and is stored as `toISOString()` writes it,
 * so `last_seen` keeps one format (ISO 8601, UTC, milliseconds, `Z`), which orders as text in time
 * order, whichever clock wrote a row.
 */
import { cachedStatement, type Db } from './db.js';
import { dialectOf } from './postgres/database.js';

/** The database's clock in whole milliseconds since the epoch (PostgreSQL; the handle reads a `bigint` as a number). */
export const PG_NOW_MS_SQL = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/** Now, in milliseconds since the epoch, on the clock `last_seen` is kept by. */
export function heartbeatClockMs(db: Db): number {
  if (dialectOf(db) === 'sqlite') return Date.now();
  return (cachedStatement(db, `SELECT ${PG_NOW_MS_SQL} AS now_ms`).get() as { now_ms: number }).now_ms;
}
