/**
 * One server, several addresses (docs/ARCHITECTURE.md, "Failover"): the journal names the server by
 * the first address configured, and what it journalled under another address of the same server —
 * the list was reordered, or a single address became one of several — is that server's too. At open,
 * those entries are taken over under the first address, in one transaction, so that recovery finds
 * them; nothing of another server is touched.
 */
import type Database from 'better-sqlite3';

/** Tables whose rows are keyed by (server_url, job_pk) and move with their job. */
const JOB_TABLES = ['jobs', 'outputs', 'live_logs', 'transitions'] as const;

/**
 * Move every row journalled under one of `aliases` to `serverUrl` (all normalised). Where the same
 * job is journalled under both, the entry changed last is kept; of the `servers` rows (the node
 * registered there), the one last in contact. Returns how many job entries moved.
 */
export function adoptServerAliases(db: Database.Database, serverUrl: string, aliases: readonly string[]): number {
  const others = aliases.filter((url) => url !== serverUrl);
  if (others.length === 0) return 0;
  const marks = others.map(() => '?').join(', ');
  let moved = 0;
  db.transaction(() => {
    // The child tables follow their job's key within the transaction: foreign keys checked at commit.
    db.pragma('defer_foreign_keys = ON');
    const conflicts = db
      .prepare(
        `SELECT a.server_url AS alias, a.job_pk, a.updated_at > p.updated_at AS alias_newer
           FROM jobs a JOIN jobs p ON p.server_url = ? AND p.job_pk = a.job_pk
          WHERE a.server_url IN (${marks})`,
      )
      .all(serverUrl, ...others) as { alias: string; job_pk: number; alias_newer: number }[];
    for (const c of conflicts) dropJob(db, c.alias_newer ? serverUrl : c.alias, c.job_pk);
    moved = (db.prepare(`SELECT COUNT(*) AS n FROM jobs WHERE server_url IN (${marks})`).get(...others) as { n: number }).n;
    for (const table of JOB_TABLES) db.prepare(`UPDATE ${table} SET server_url = ? WHERE server_url IN (${marks})`).run(serverUrl, ...others);

    const latest = db
      .prepare(`SELECT server_url FROM servers WHERE server_url IN (?, ${marks}) ORDER BY COALESCE(last_contact_at, updated_at) DESC LIMIT 1`)
      .get(serverUrl, ...others) as { server_url: string } | undefined;
    if (latest !== undefined) {
      db.prepare(`DELETE FROM servers WHERE server_url IN (?, ${marks}) AND server_url <> ?`).run(serverUrl, ...others, latest.server_url);
      db.prepare('UPDATE servers SET server_url = ? WHERE server_url = ?').run(serverUrl, latest.server_url);
    }
  })();
  return moved;
}

function dropJob(db: Database.Database, serverUrl: string, jobPk: number): void {
  for (const table of ['outputs', 'live_logs', 'transitions', 'jobs'] as const) {
    db.prepare(`DELETE FROM ${table} WHERE server_url = ? AND job_pk = ?`).run(serverUrl, jobPk);
  }
}
