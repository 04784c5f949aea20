/**
 * Transactions on PostgreSQL outside the store's own handle (the copy of `migrate-store`), and the
 * durability every acknowledged transition needs: the answer leaves only after `COMMIT` returns, and
 * with `synchronous_commit` on (checked at start) that means the commit is on the server's disk (and
 * its synchronous standbys', where configured). The store's transitions run on `database.ts`.
 */
import type pg from 'pg';

/** Run `fn` in one transaction on one connection: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}

/**
 * Refuse a database on which a commit may be acknowledged before it is durable: `fsync` off, or
 * `synchronous_commit` off (for the server, this database or this user). The server promises that an
 * answered transition survives a crash; on such a database it could not keep that promise.
 */
export async function checkDurability(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')",
  );
  const settings = new Map(rows.map((row) => [row.name, row.setting]));
  if (settings.get('fsync') === 'off') throw new Error('PostgreSQL runs with fsync = off: an acknowledged transition could be lost; refusing to serve on it.');
  if (settings.get('synchronous_commit') === 'off') {
    throw new Error('PostgreSQL runs with synchronous_commit = off for this database or user: an acknowledged transition could be lost; refusing to serve on it.');
  }
}
