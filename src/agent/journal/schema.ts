/**
 * The journal's SQLite schema, versioned in `PRAGMA user_version`: `MIGRATIONS[i]` brings a file
 * from version i to i + 1, each in its own transaction, so an old journal is upgraded in place when
 * the agent opens it and a crash mid-upgrade leaves it at the last complete version.
 *
 * Never edit a released migration; append a new one. States are not CHECK-constrained in SQL so a
 * new state needs no table rebuild; the code validates every row it reads.
 */
import type Database from 'better-sqlite3';
import { JournalError } from './errors.js';

export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema.
  `
  -- One row per server the agent has talked to: the node it registered there and what it last
  -- reported about itself.
  CREATE TABLE servers (
    server_url      TEXT PRIMARY KEY,
    node_pk         INTEGER,
    ip              TEXT,
    node_index      INTEGER,
    hardware_json   TEXT,
    registered_at   TEXT,
    last_contact_at TEXT,
    updated_at      TEXT NOT NULL
  );

  -- Small agent state that fits no table (string values; JSON where structured).
  CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );

  -- One row per (server, job), re-used by a later attempt of the same job.
  CREATE TABLE jobs (
    server_url     TEXT    NOT NULL,
    job_pk         INTEGER NOT NULL,
    node_pk        INTEGER NOT NULL,
    template_pk    INTEGER,
    state          TEXT    NOT NULL,
    slot           INTEGER,
    job_dir        TEXT,
    pid            INTEGER,
    pid_start      TEXT,
    exit_code      INTEGER,
    exit_signal    TEXT,
    finish_decided INTEGER NOT NULL DEFAULT 0,
    finish_error   TEXT,
    attempts       INTEGER NOT NULL DEFAULT 1,
    runs           INTEGER NOT NULL DEFAULT 0,
    restarts       INTEGER NOT NULL DEFAULT 0,
    last_progress  REAL,
    last_error     TEXT,
    state_times    TEXT    NOT NULL DEFAULT '{}',
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    state_since    TEXT    NOT NULL,
    PRIMARY KEY (server_url, job_pk)
  );
  CREATE INDEX jobs_unfinished ON jobs(server_url, job_pk) WHERE state <> 'done';

  -- Append-only history of every state a job entered (from_state is null for a new attempt).
  CREATE TABLE transitions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    server_url TEXT    NOT NULL,
    job_pk     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    note       TEXT
  );
  CREATE INDEX transitions_job ON transitions(server_url, job_pk, id);

  CREATE TABLE outputs (
    server_url TEXT    NOT NULL,
    job_pk     INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (server_url, job_pk, name, type),
    FOREIGN KEY (server_url, job_pk) REFERENCES jobs(server_url, job_pk) ON DELETE CASCADE
  );

  -- Who holds the writer lock, for error messages and \`ufdl-agent status\`. The lock itself is an
  -- OS lock on a side file (see lock.ts); this row is only its label.
  CREATE TABLE agent_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    pid         INTEGER NOT NULL,
    pid_start   TEXT,
    hostname    TEXT    NOT NULL,
    acquired_at TEXT    NOT NULL
  );
  `,
  // 2: the live log of a job's current attempt (src/agent/logs/): how far it was sent, and the cap it
  // was begun with. Its own table, so the job rows keep their shape; a row of an older attempt
  // (\`attempt\` below the job's) is stale and ignored.
  `
  CREATE TABLE live_logs (
    server_url TEXT    NOT NULL,
    job_pk     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    sent       INTEGER NOT NULL,
    max_bytes  INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (server_url, job_pk),
    FOREIGN KEY (server_url, job_pk) REFERENCES jobs(server_url, job_pk) ON DELETE CASCADE
  );
  `,
  // 3: whether a finish sends the job back to the queue (reset and release after it), journalled
  // with the finish decision instead of being read back from the error's text. Rows written before
  // held only the text: the rule recovery applied to it until now, frozen here, decides them once.
  `
  ALTER TABLE jobs ADD COLUMN finish_requeue INTEGER NOT NULL DEFAULT 0;
  UPDATE jobs SET finish_requeue = 1
   WHERE finish_decided = 1
     AND finish_error IS NOT NULL
     AND (substr(finish_error, 1, 25) = 'The node is shutting down'
       OR substr(finish_error, 1, 37) = 'The node lost contact with the server'
       OR substr(finish_error, 1, 36) = 'Node restarted during job execution.')
     AND instr(finish_error, 'Not retried') = 0;
  `,
  // 4: an output's size and SHA-256 are those of the bytes its upload sent, hashed as they were read
  // (the file is read once), so they are unknown (NULL) until the server acknowledged the upload.
  // SQLite cannot drop a NOT NULL in place: the table is rebuilt, its rows (all with a digest) kept.
  `
  CREATE TABLE outputs_v4 (
    server_url TEXT    NOT NULL,
    job_pk     INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    size       INTEGER,
    sha256     TEXT,
    state      TEXT    NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (server_url, job_pk, name, type),
    FOREIGN KEY (server_url, job_pk) REFERENCES jobs(server_url, job_pk) ON DELETE CASCADE
  );
  INSERT INTO outputs_v4 SELECT * FROM outputs ORDER BY rowid;
  DROP TABLE outputs;
  ALTER TABLE outputs_v4 RENAME TO outputs;
  `,
];

/**
 * `PRAGMA application_id` of every journal ("ufjl"), so that pointing the agent at some other SQLite
 * file (the embedded server's database, say) is refused instead of being taken for a journal.
 */
export const APPLICATION_ID = 0x75666a6c;

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Durability settings: WAL so readers never block the writer, FULL so a commit survives power loss. */
export function applyWriterPragmas(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // One writer per journal (enforced by the lock); readers in WAL mode never block it, but a
  // checkpoint may briefly wait on a reader.
  db.pragma('busy_timeout = 5000');
}

/** Bring `db` to {@link SCHEMA_VERSION}; refuse a file written by a newer version. */
export function migrate(db: Database.Database, path: string, migrations: readonly string[] = MIGRATIONS): void {
  const current = checkJournalFile(db, path);
  if (current > migrations.length) {
    throw new JournalError(
      'JOURNAL_SCHEMA',
      `The journal ${path} was written by a newer ufdl-agent (schema ${current}, this version knows ` +
        `${migrations.length}); refusing to open it.`,
    );
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      if (version === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
      db.exec(migrations[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

/**
 * The schema version of an opened file, after checking that it is a journal (or still empty).
 * Throws `JOURNAL_SCHEMA` for a file that is not SQLite or is some other application's database.
 */
export function checkJournalFile(db: Database.Database, path: string): number {
  let version: number;
  let appId: number;
  try {
    version = db.pragma('user_version', { simple: true }) as number;
    appId = db.pragma('application_id', { simple: true }) as number;
  } catch (err) {
    throw new JournalError('JOURNAL_SCHEMA', `${path} is not a SQLite database: ${(err as Error).message}`, { cause: err });
  }
  // A version-0 file with tables is some other application's database, not an empty journal.
  if ((version > 0 && appId !== APPLICATION_ID) || (version === 0 && tableCount(db) > 0)) {
    throw new JournalError('JOURNAL_SCHEMA', `${path} is a SQLite database but not an agent journal; refusing to use it.`);
  }
  return version;
}

export function schemaVersionOf(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function tableCount(db: Database.Database): number {
  return (db.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'`).get() as { n: number }).n;
}
