/**
 * Reading a journal while its agent runs, for `ufdl-agent status`: a read-only connection in WAL
 * mode sees every committed transaction and never blocks the writer. It takes no lock, runs no
 * migration and writes nothing.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { JournalError } from './errors.js';
import { JournalView } from './queries.js';
import { normalizeServerUrl } from './records.js';
import { SCHEMA_VERSION, checkJournalFile } from './schema.js';

/** A read-only view of a journal: every query of `Journal`, no writes. `close()` is idempotent. */
export type JournalReader = JournalView;

/**
 * Open the journal at `path` read-only. With `serverUrl`, job queries and `stats()` are for that
 * server (as the agent sees them); without, for every server in the file. Throws
 * `JOURNAL_NOT_FOUND` when there is no file and `JOURNAL_SCHEMA` when it is not a journal or its
 * schema differs from this version's (an older one is migrated the next time the agent starts).
 */
export function openReadOnly(path: string, options: { serverUrl?: string } = {}): JournalReader {
  const file = resolve(path);
  if (!existsSync(file)) throw new JournalError('JOURNAL_NOT_FOUND', `There is no journal at ${file}.`);
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const version = checkJournalFile(db, file);
    if (version !== SCHEMA_VERSION) {
      throw new JournalError(
        'JOURNAL_SCHEMA',
        version === 0
          ? `${file} is not an agent journal (it is empty).`
          : `The journal ${file} has schema ${version}; this version of ufdl-agent reads ${SCHEMA_VERSION}` +
            (version < SCHEMA_VERSION ? ' (start the agent once to migrate it).' : ' (it was written by a newer agent).'),
      );
    }
    return new JournalView(db, file, options.serverUrl === undefined ? null : normalizeServerUrl(options.serverUrl));
  } catch (err) {
    db.close();
    throw err;
  }
}
