/**
 * Opening a journal for writing: take the one-agent lock, create and migrate the file, label the
 * lock with this process. See journal.ts for what the journal then does.
 */
import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { adoptServerAliases } from './aliases.js';
import { JournalLockedError, type LockHolder } from './errors.js';
import { Journal, type JournalOptions } from './journal.js';
import { lockPathFor, tryLockJournal } from './lock.js';
import { isProcessAlive, processStartIdentity } from '../child/identity.js';
import { JournalView } from './queries.js';
import { normalizeServerUrl } from './records.js';
import { applyWriterPragmas, checkJournalFile, migrate } from './schema.js';
import { makeDirsSync } from '../../make-dirs.js';

/** Journal files open for writing in this process (resolved paths), for a clear double-open error. */
const openInProcess = new Set<string>();

/**
 * Open (creating and migrating if needed) the journal at `options.path` for writing. Throws
 * `JournalLockedError` if another agent process, or another `Journal` in this process, has it open;
 * a journal left by a dead agent is taken over.
 */
export function openJournal(options: JournalOptions): Journal {
  const path = resolve(options.path);
  const serverUrl = normalizeServerUrl(options.serverUrl);
  if (openInProcess.has(path)) throw new JournalLockedError(path, readHolder(path) ?? ownLabel(new Date()));
  makeDirsSync(dirname(path));
  const lock = tryLockJournal(path);
  if (lock === null) throw new JournalLockedError(path, readHolder(path));
  // The lock lives on a side file, which can be deleted under a running agent (a "stale lock"
  // clean-up): this process then locks a new file and would share the journal with it. The label
  // the holder wrote into the journal itself cannot be deleted that way, so a label naming another
  // live agent process refuses the journal even though the side file was free.
  const labelled = readHolder(path);
  if (labelled !== null && isOtherLiveAgent(labelled)) {
    lock.release();
    throw new JournalLockedError(path, labelled, { detail: `its lock file ${lockPathFor(path)} was removed or replaced while that agent runs` });
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    checkJournalFile(db, path);
    applyWriterPragmas(db);
    migrate(db, path);
    const moved = adoptServerAliases(db, serverUrl, (options.otherServerUrls ?? []).map(normalizeServerUrl));
    if (moved > 0) options.logger?.info({ server: serverUrl, moved }, 'journal entries of another address of this server taken over under its first address');
    const journal = new Journal(
      { db, path, serverUrl, lock, label: ownLabel(options.now?.() ?? new Date()), onClosed: () => openInProcess.delete(path) },
      options,
    );
    openInProcess.add(path);
    return journal;
  } catch (err) {
    db?.close();
    lock.release();
    throw err;
  }
}

/**
 * Whether a journal's holder label names a process other than this one that still runs here: same
 * host, and the same process by its start identity (a pid alone may since belong to someone else;
 * a label without a start identity proves nothing, so it never refuses).
 */
function isOtherLiveAgent(holder: LockHolder): boolean {
  if (holder.hostname !== hostname() || holder.pid === process.pid || holder.pidStart === null) return false;
  return isProcessAlive(holder.pid, holder.pidStart);
}

function ownLabel(at: Date): LockHolder {
  return { pid: process.pid, pidStart: processStartIdentity(process.pid), hostname: hostname(), acquiredAt: at.toISOString() };
}

/** The holder label of a locked journal, best effort (it may not be written yet, or not readable). */
function readHolder(path: string): LockHolder | null {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 1000 });
    try {
      const view = new JournalView(db, path, null);
      return view.holder();
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}
