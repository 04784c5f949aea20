/**
 * For tests of what the server shows while its writes await their disk sync (group commit,
 * src/server/store/durability.ts): a gate on the WAL's `fdatasync`, and the server's own SQLite
 * connection, which alone sees what is written but not yet committed. A test file installs both
 * with `vi.mock` (hoisted, so each factory imports this module itself):
 *
 *   vi.mock('node:fs/promises', async (original) => (await import('../helpers/held-wal-sync.js')).withHeldWalSync(await original()));
 *   vi.mock('../../src/server/store/turn-batch.js', async (original) => (await import('../helpers/held-wal-sync.js')).capturingServerDb(await original()));
 *
 * This module imports nothing at run time, so that the mocks it serves do not load what they mock.
 */
import type * as FsPromises from 'node:fs/promises';
import type { Db } from '../../src/server/store/db.js';
import type * as TurnBatch from '../../src/server/store/turn-batch.js';

/**
 * While `held` is set, every sync of a `-wal` file waits for it (and says so through `onHeld`), as a
 * slow disk would. Other files are not touched.
 */
export const walSync: { held: Promise<void> | undefined; onHeld: () => void } = { held: undefined, onHeld: () => {} };

/** The server's connection, caught as the store sets it up. */
export const server: { db: Db | undefined } = { db: undefined };

/** `node:fs/promises` whose handles of `-wal` files sync through {@link walSync}. */
export function withHeldWalSync(fs: typeof FsPromises): typeof FsPromises {
  const open = (async (...args: Parameters<typeof fs.open>) => {
    const handle = await fs.open(...args);
    if (String(args[0]).endsWith('-wal')) {
      const datasync = handle.datasync.bind(handle);
      handle.datasync = async () => {
        const held = walSync.held;
        if (held) {
          walSync.onHeld();
          await held;
        }
        return datasync();
      };
    }
    return handle;
  }) as typeof fs.open;
  return { ...fs, default: { ...fs, open }, open } as typeof FsPromises;
}

/** The turn batching module, keeping the connection it is given in {@link server}. */
export function capturingServerDb(batching: typeof TurnBatch): typeof TurnBatch {
  return {
    ...batching,
    batchWritesPerTurn: (db: Db) => {
      server.db = db;
      batching.batchWritesPerTurn(db);
    },
  };
}

/**
 * Hold every WAL sync from now on: `held` resolves once a sync waits, and `release()` lets it and
 * every later one go (call it at the test's end too: `onTestFinished(release)`).
 */
export function holdWalSyncs(): { held: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    walSync.onHeld = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    release = () => {
      walSync.held = undefined;
      resolve();
    };
  });
  walSync.held = gate;
  return { held, release };
}
