/**
 * The store's handle on PostgreSQL (`postgres/database.ts` over `statement-thread.ts`) against a real
 * PostgreSQL 15: rows shaped as SQLite gives them, `lastInsertRowid`, transactions and savepoints
 * that commit or roll back as better-sqlite3's do, a connection lost inside a transaction that fails
 * the transaction instead of finishing it statement by statement elsewhere, and a bounded number of
 * statements prepared on the connection whatever texts clients make it run.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PostgresDatabase } from '../../../src/server/store/postgres/database.js';
import { migratedHandle, PG_BIN, PG_USER, usePgCluster } from '../../helpers/postgres.js';

const cluster = usePgCluster();
let databases = 0;

async function handle(): Promise<{ db: PostgresDatabase }> {
  return { db: await migratedHandle(cluster, `handle_${++databases}`) };
}

const now = () => new Date().toISOString();

/** `pg_terminate_backend(pid)` from a psql process, waiting for it (as `postgres` when we are root). */
function terminateBackend(pid: number): void {
  const { dir, port } = cluster.get();
  const psql = join(PG_BIN, 'psql');
  const args = ['-h', dir, '-p', String(port), '-U', PG_USER, '-d', 'postgres', '-qAt', '-c', `SELECT pg_terminate_backend(${pid})`];
  const out = process.getuid?.() === 0 ? execFileSync('runuser', ['-u', 'postgres', '--', psql, ...args]) : execFileSync(psql, args);
  expect(out.toString().trim()).toBe('t');
}

describe('the PostgreSQL store handle', () => {
  it('gives rows as SQLite does: pks from inserts, 0/1 for booleans, Buffers for bytes, numbers for counts and sums', async () => {
    const { db } = await handle();
    const user = db.prepare("INSERT INTO users (username, password_hash, date_joined) VALUES (?, 'x', ?)").run('u1', now());
    expect(user).toEqual({ changes: 1, lastInsertRowid: 1 });
    const second = db.prepare("INSERT INTO users (username, password_hash, date_joined) VALUES (?, 'x', ?)").run('u2', now());
    expect(second.lastInsertRowid).toBe(2);
    // A table without a pk: no RETURNING, changes only.
    expect(db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, content) VALUES (?, ?, ?)').run('ab', 3, Buffer.from('abc'))).toEqual({ changes: 1, lastInsertRowid: 0 });
    expect(db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, content) VALUES (?, ?, ?)').run('ab', 3, Buffer.from('abc')).changes).toBe(0);
    const blob = db.prepare('SELECT content, size, content IS NOT NULL AS present FROM blobs WHERE sha256 = ?').get('ab') as { content: Buffer; size: number; present: number };
    expect(Buffer.isBuffer(blob.content)).toBe(true);
    expect(blob.content.toString()).toBe('abc');
    expect(blob).toMatchObject({ size: 3, present: 1 });
    expect(db.prepare('SELECT COUNT(*) AS n, SUM(size) AS total FROM blobs').get()).toEqual({ n: 1, total: 3 });
    expect(db.prepare('SELECT pk FROM users WHERE pk IN (SELECT value FROM json_each(?)) ORDER BY pk').all(JSON.stringify([2, 7]))).toEqual([{ pk: 2 }]);
    expect(db.prepare('SELECT pk FROM users WHERE username = ? COLLATE NOCASE').get('U1')).toEqual({ pk: 1 });
    expect(db.prepare('SELECT pk FROM users WHERE pk IS NOT ? ORDER BY pk').all(null)).toEqual([{ pk: 1 }, { pk: 2 }]);
    expect(db.prepare('SELECT missing FROM (SELECT 1 AS missing) AS t WHERE missing = ?').get(2)).toBeUndefined();
  });

  it('commits a transaction that returns, rolls back one that throws, and nests as savepoints', async () => {
    const { db } = await handle();
    const insert = db.prepare("INSERT INTO users (username, password_hash, date_joined) VALUES (?, 'x', ?)");
    const count = () => (db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n;
    db.transaction(() => insert.run('kept', now()))();
    expect(count()).toBe(1);
    expect(() =>
      db.transaction(() => {
        insert.run('undone', now());
        throw new Error('changed my mind');
      })(),
    ).toThrow('changed my mind');
    expect(count()).toBe(1);
    db.transaction(() => {
      insert.run('outer', now());
      expect(() =>
        db.transaction(() => {
          insert.run('inner', now());
          throw new Error('inner only');
        })(),
      ).toThrow('inner only');
    })();
    const names = (db.prepare('SELECT username FROM users ORDER BY pk').all() as { username: string }[]).map((u) => u.username);
    expect(names).toEqual(['kept', 'outer']);
    // A constraint refused inside a transaction leaves nothing of it behind.
    expect(() => db.transaction(() => {
      insert.run('half', now());
      insert.run('kept', now());
    })()).toThrow(/duplicate key/);
    expect(count()).toBe(2);
  });

  it('fails a transaction whose connection died rather than finishing it on a new one, then works again', async () => {
    const { db } = await handle();
    const insert = db.prepare("INSERT INTO users (username, password_hash, date_joined) VALUES (?, 'x', ?)");
    const pid = (db.prepare('SELECT pg_backend_pid() AS pid').get() as { pid: number }).pid;
    expect(() =>
      db.transaction(() => {
        insert.run('before', now());
        // Killed from outside while the transaction is open. The handle blocks this thread, so the
        // kill comes from another process, synchronously.
        terminateBackend(pid);
        insert.run('after', now());
      })(),
    ).toThrow(/lost inside a transaction/);
    // Neither statement of the failed transaction survived, and the handle serves again.
    expect(db.prepare('SELECT username FROM users ORDER BY pk').all()).toEqual([]);
    expect(insert.run('later', now()).changes).toBe(1);
    expect((db.prepare('SELECT pg_backend_pid() AS pid').get() as { pid: number }).pid).not.toBe(pid);
  });

  it('prepares at most 512 statements on its connection, however many texts it runs', async () => {
    const { db } = await handle();
    for (let i = 0; i < 700; i++) expect(db.prepare(`SELECT ${i} AS n WHERE ? = 1`).get(1)).toEqual({ n: i });
    // Every text ran; the ones past the cap ran unnamed, and run again as often as asked.
    expect(db.prepare('SELECT 699 AS n WHERE ? = 1').get(1)).toEqual({ n: 699 });
    const prepared = (db.prepare('SELECT COUNT(*) AS n FROM pg_prepared_statements').get() as { n: number }).n;
    expect(prepared).toBeLessThanOrEqual(512);
    expect(prepared).toBeGreaterThan(500);
  });
});
