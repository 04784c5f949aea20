/**
 * The server's own database for tests that call the store, the sweeper or the durability barrier
 * directly (no HTTP): migrated, in a temporary directory, with its WAL barrier; closed and removed
 * when the test finishes.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { onTestFinished } from 'vitest';
import { BlobStore } from '../../../src/server/blobs.js';
import type { ServerContext } from '../../../src/server/context.js';
import { NotifyHub } from '../../../src/server/notify-hub.js';
import { resolveServerOptions, type ServerOptions } from '../../../src/server/options.js';
import { openDatabase, type Db } from '../../../src/server/store/db.js';
import { walBarrier } from '../../../src/server/store/durability.js';
import { sqliteTextSearches } from '../../../src/server/store/text-searches.js';
import { WakeHub } from '../../../src/server/wake-up/wake-hub.js';
import { tempDir } from '../../helpers/temp-dir.js';

export async function temporaryDatabase(prefix: string): Promise<{ dir: string; db: Db; durability: ReturnType<typeof walBarrier> }> {
  const dir = await tempDir(prefix);
  const db = openDatabase(join(dir, 'db.sqlite3'));
  const durability = walBarrier(db, { error: () => {} });
  onTestFinished(async () => {
    await durability.close();
    db.close();
  });
  return { dir, db, durability };
}

/**
 * A server context over a temporary database holding one admin user (pk 1) and one template (pk 1),
 * enough to insert nodes and jobs by hand. `warnings` collects what it logs at warn level.
 */
export async function storeContext(options: Omit<ServerOptions, 'dataDir'> = {}): Promise<{ ctx: ServerContext; warnings: unknown[][] }> {
  const { dir, db, durability } = await temporaryDatabase('ufdl-store-');
  const warnings: unknown[][] = [];
  const log = { warn: (...args: unknown[]) => warnings.push(args), error: () => {}, info: () => {} } as unknown as Logger;
  const resolved = resolveServerOptions({ dataDir: dir, ...options });
  // Its reader thread starts with the first text search only.
  const searches = sqliteTextSearches(db, log, resolved.searchTimeLimitSeconds);
  onTestFinished(() => searches.close());
  const ctx: ServerContext = {
    db,
    options: resolved,
    searches,
    log,
    hub: new NotifyHub(),
    wakeups: new WakeHub(),
    durable: durability.barrier,
    blobs: new BlobStore(join(dir, 'o')),
    tokens: undefined as never,
    closing: new AbortController().signal,
  };
  db.prepare(`INSERT INTO users (username, password_hash, is_staff, date_joined) VALUES ('a', 'x', 1, '2020-01-01T00:00:00.000Z')`).run();
  db.prepare(`INSERT INTO templates (name, version, type, executor_class, creation_time) VALUES ('t', 1, 'Run', 'x', '2020-01-01T00:00:00.000Z')`).run();
  return { ctx, warnings };
}
