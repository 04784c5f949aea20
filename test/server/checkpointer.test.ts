/**
 * WAL checkpoints run on a worker thread, not inside the server's commits (which would stall the
 * event loop for a copy and an fsync every thousand pages).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startCheckpointer } from '../../src/server/store/checkpointer.js';
import { openDatabase } from '../../src/server/store/db.js';
import { until } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';

async function database() {
  const dir = await tempDir('ufdl-checkpoint-');
  const db = openDatabase(join(dir, 'ufdl.sqlite3'));
  onTestFinished(async () => {
    if (db.open) db.close();
  });
  return { db, file: join(dir, 'ufdl.sqlite3') };
}

const silent = { warn: () => {}, error: () => {} };

describe('WAL checkpointer', () => {
  it('checkpoints from its worker while the connection never does', async () => {
    const { db, file } = await database();
    const checkpointer = startCheckpointer(db, silent, 20);
    onTestFinished(() => checkpointer.close());
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const before = (await stat(file)).size;
    const insert = db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?)`);
    // Each its own commit, as requests make them: far more than the thousand pages at which the
    // connection would have checkpointed by itself.
    for (let i = 0; i < 3000; i++) insert.run(`k${i}`, 'x'.repeat(2000));
    // Only a checkpoint writes rows into the database file; this connection was told not to.
    await until(async () => (await stat(file)).size > before + 3000 * 2000, 30_000, 'the rows checkpointed into the database file');
    expect(checkpointer.status()).toMatchObject({ mode: 'worker' });
    // The worker reports a round once it has run it: the file can grow before the report arrives.
    await until(() => checkpointer.status().rounds > 0, 30_000, "the worker's report of its round");
    expect((db.prepare('SELECT COUNT(*) AS n FROM settings').get() as { n: number }).n).toBeGreaterThanOrEqual(3000);
  });

  it('hands checkpointing back to the connection when it is closed', async () => {
    const { db } = await database();
    const checkpointer = startCheckpointer(db, silent, 20);
    await until(() => checkpointer.status().rounds > 0, 30_000, 'a first round');
    await checkpointer.close();
    await checkpointer.close();
    expect(checkpointer.status().mode).toBe('connection');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});
