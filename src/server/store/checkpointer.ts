/**
 * WAL checkpoints off the event loop. SQLite checkpoints automatically inside the commit that makes
 * the WAL exceed 1000 pages: that commit copies the pages into the database file and, with
 * `synchronous = NORMAL`, fsyncs it — on the event loop, which then stalls for 5–80 ms on a busy
 * disk, once every thousand pages of writes (a server with ten thousand nodes heartbeating does that
 * every second or two, and every request waiting at that moment waits with it).
 *
 * So the server's connection does not checkpoint (`wal_autocheckpoint = 0`), and a worker thread
 * with its own connection runs a PASSIVE checkpoint every {@link CHECKPOINT_INTERVAL_MS}: it copies
 * what no reader still needs, never blocks the writer, and its syncs run on the worker's thread. Its
 * durability is SQLite's own (the WAL is synced before a checkpoint, the database file after it),
 * and it changes nothing of group commit (`durability.ts`). Should the worker fail, the connection
 * goes back to checkpointing itself, so the WAL cannot grow without bound.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Db } from './db.js';

export const CHECKPOINT_INTERVAL_MS = 500;
/** SQLite's default, restored when the worker is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

// Plain JavaScript run by `new Worker(…, { eval: true })`, so the same code serves `src/` under the
// test runner and `dist/`. It loads the very better-sqlite3 the server uses, by resolved path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
let timer;
const run = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ type: 'checkpointed', pages: result.checkpointed });
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String(err && err.message || err) });
  }
  timer = setTimeout(run, workerData.intervalMs);
};
timer = setTimeout(run, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerStatus {
  /** `worker` while the worker checkpoints; `connection` once the connection does it again. */
  mode: 'worker' | 'connection';
  /** Checkpoint rounds the worker completed. */
  rounds: number;
}

export interface Checkpointer {
  status(): CheckpointerStatus;
  /** Stop the worker (before the database is closed); the connection checkpoints again. Idempotent. */
  close(): Promise<void>;
}

/** Move `db`'s checkpoints to a worker thread. `intervalMs` is for tests. */
export function startCheckpointer(db: Db, log: Pick<Logger, 'warn' | 'error'>, intervalMs = CHECKPOINT_INTERVAL_MS): Checkpointer {
  const status: CheckpointerStatus = { mode: 'worker', rounds: 0 };
  db.pragma('wal_autocheckpoint = 0');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file: db.name, driver: createRequire(import.meta.url).resolve('better-sqlite3'), intervalMs },
    // A small heap: it holds one connection and a timer.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
  });
  // The server's lifetime is its listening socket's; a checkpoint timer must not extend it.
  worker.unref();
  let closing = false;
  const fallBack = (why: string, err?: unknown) => {
    if (status.mode === 'connection') return;
    status.mode = 'connection';
    if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    if (!closing) log.error({ err }, `the WAL checkpoint worker ${why}; the database connection checkpoints itself again`);
  };
  let lastError = '';
  worker.on('message', (message: { type: string; message?: string }) => {
    if (message.type === 'checkpointed') status.rounds++;
    // A checkpoint that fails once (the file busy) is tried again next round; say so once per cause.
    else if (message.type === 'error' && message.message !== lastError) {
      lastError = message.message ?? '';
      log.warn({ err: lastError }, 'a WAL checkpoint failed; trying again');
    }
  });
  worker.on('error', (err) => fallBack('failed', err));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  void exited.then(() => fallBack('stopped'));
  return {
    status: () => ({ ...status }),
    async close() {
      if (closing) return exited;
      closing = true;
      worker.postMessage('stop');
      // A worker stuck in a long checkpoint is not waited for beyond a few seconds.
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
