/**
 * The server's SQLite database: opening it with the settings durability needs, and migrating it.
 *
 * Migrations are versioned in the code (`MIGRATIONS[i]` brings the schema from version i to i+1) and
 * recorded in `PRAGMA user_version`, so an old data directory is upgraded in place on start.
 */
import Database, { type Statement } from 'better-sqlite3';
import { NewerSchemaError } from './newer-schema.js';
import { LICENCE_ROWS } from './licence-rows.js';
import { abandonTurnBatch, batchesWritesPerTurn, joinTurnBatch } from './turn-batch.js';

export type Db = Database.Database;

export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema.
  `
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE users (
    pk            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_staff      INTEGER NOT NULL DEFAULT 0,
    is_superuser  INTEGER NOT NULL DEFAULT 0,
    is_active     INTEGER NOT NULL DEFAULT 1,
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    date_joined   TEXT NOT NULL,
    last_login    TEXT
  );

  CREATE TABLE hardware (
    pk                     INTEGER PRIMARY KEY AUTOINCREMENT,
    generation             TEXT NOT NULL UNIQUE,
    min_compute_capability REAL NOT NULL,
    max_compute_capability REAL NOT NULL
  );

  CREATE TABLE nodes (
    pk                  INTEGER PRIMARY KEY AUTOINCREMENT,
    ip                  TEXT NOT NULL,
    "index"             INTEGER NOT NULL,
    driver_version      TEXT,
    hardware_generation INTEGER REFERENCES hardware(pk),
    gpu_mem             INTEGER,
    cpu_mem             INTEGER NOT NULL,
    last_seen           TEXT,
    current_job         INTEGER,
    owner               INTEGER REFERENCES users(pk),
    UNIQUE (ip, "index")
  );

  CREATE TABLE templates (
    pk                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    version           INTEGER NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    scope             TEXT NOT NULL DEFAULT 'public',
    domain            TEXT,
    licence           TEXT,
    type              TEXT NOT NULL,
    executor_class    TEXT NOT NULL,
    required_packages TEXT NOT NULL DEFAULT '',
    parameters        TEXT NOT NULL DEFAULT '{}',
    inputs            TEXT,
    creator           INTEGER REFERENCES users(pk),
    creation_time     TEXT NOT NULL,
    deletion_time     TEXT
  );
  CREATE INDEX templates_name ON templates(name, version);

  CREATE TABLE jobs (
    pk               INTEGER PRIMARY KEY AUTOINCREMENT,
    template         INTEGER NOT NULL REFERENCES templates(pk),
    parent           INTEGER,
    description      TEXT NOT NULL DEFAULT '',
    input_values     TEXT NOT NULL DEFAULT '{}',
    parameter_values TEXT,
    node             INTEGER REFERENCES nodes(pk),
    start_time       TEXT,
    end_time         TEXT,
    error_reason     TEXT,
    progress_amount  REAL NOT NULL DEFAULT 0,
    -- Extension (bug B4): set when a job is cancelled before it started, so it cannot be acquired.
    cancelled_unstarted INTEGER NOT NULL DEFAULT 0,
    creator          INTEGER REFERENCES users(pk),
    creation_time    TEXT NOT NULL,
    deletion_time    TEXT
  );
  CREATE INDEX jobs_queue ON jobs(start_time, node, error_reason);
  CREATE INDEX jobs_node ON jobs(node);

  CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL
  );

  CREATE TABLE outputs (
    pk            INTEGER PRIMARY KEY AUTOINCREMENT,
    job           INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES blobs(sha256),
    size          INTEGER NOT NULL,
    creator       INTEGER REFERENCES users(pk),
    creation_time TEXT NOT NULL,
    deletion_time TEXT,
    -- Set by reset/abort (bug B5): such outputs are gone for every purpose but a record of history.
    removed       INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX outputs_job ON outputs(job, name, type);
  `,
  // 2: the outputs a `Run` template declares (`specific.outputs`, a JSON map of name to type).
  `
  ALTER TABLE templates ADD COLUMN outputs TEXT;
  `,
  // 3: the reference's hardware generations with its pks (Ampere 8.0–9.0, Hopper pk 8); newer
  // generations are an extension listed after them (served only with extensions on). Data
  // directories seeded before had Ampere end at 8.9, an 'Ada Lovelace' row at pk 8, Hopper at 9 and
  // 'Blackwell and newer' at 10: their nodes move along (Ada Lovelace → Ampere, as the reference maps
  // 8.9), and the rows are rewritten in place. A new database is empty here; the seed fills it.
  `
  ALTER TABLE hardware ADD COLUMN extension INTEGER NOT NULL DEFAULT 0;
  CREATE TEMP TABLE hardware_before (old_layout INTEGER NOT NULL);
  INSERT INTO hardware_before SELECT EXISTS (SELECT 1 FROM hardware WHERE pk = 8 AND generation = 'Ada Lovelace');
  UPDATE nodes SET hardware_generation = hardware_generation - 1
    WHERE hardware_generation IN (8, 9, 10) AND (SELECT old_layout FROM hardware_before);
  DELETE FROM hardware WHERE pk = 10 AND (SELECT old_layout FROM hardware_before);
  UPDATE hardware SET generation = 'Blackwell and newer', min_compute_capability = 10.0, max_compute_capability = 100.0, extension = 1
    WHERE pk = 9 AND (SELECT old_layout FROM hardware_before);
  UPDATE hardware SET generation = 'Hopper', min_compute_capability = 9.0, max_compute_capability = 10.0
    WHERE pk = 8 AND (SELECT old_layout FROM hardware_before);
  UPDATE hardware SET max_compute_capability = 9.0 WHERE pk = 7 AND (SELECT old_layout FROM hardware_before);
  DROP TABLE hardware_before;
  `,
  // 4: licences as the reference seeds them (its migrations/licences: names, URLs and pks in the
  // order of its licenses.csv, sub-descriptors from its per-licence files). A template's licence
  // becomes the licence's pk (licence_pk); the old name column stays for templates imported before,
  // whose names are matched to a pk at start-up (store/licences.ts).
  `
  CREATE TABLE licences (
    pk          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    url         TEXT NOT NULL,
    permissions TEXT NOT NULL,
    conditions  TEXT NOT NULL,
    limitations TEXT NOT NULL,
    domains     TEXT NOT NULL
  );
  ${LICENCE_ROWS}
  ALTER TABLE templates ADD COLUMN licence_pk INTEGER REFERENCES licences(pk);
  `,
  // 5: the dashboard's jobs table (dashboard/job-table.ts) pages newest first by state and by
  // template; without these, a page of running jobs or of one template scans every job.
  `
  CREATE INDEX jobs_unended ON jobs(pk) WHERE end_time IS NULL;
  CREATE INDEX jobs_template ON jobs(template);
  `,
  // 6 (extension): why a waiting job was skipped, as each node that skipped it reported.
  `
  CREATE TABLE job_waits (
    job    INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    node   INTEGER NOT NULL REFERENCES nodes(pk) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    since  TEXT NOT NULL,
    PRIMARY KEY (job, node)
  );
  `,
  // 7: a user's token generation; a token of an older generation is revoked (password changes).
  `
  ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
  `,
  // 8: worker accounts, which alone may act as nodes when serve.node_actions = 'workers'.
  `
  ALTER TABLE users ADD COLUMN is_worker INTEGER NOT NULL DEFAULT 0;
  `,
  // 9: workflows (meta-templates). A meta-template keeps its resolved dependency graph in `graph`
  // (null for workable templates); its inputs, parameters and outputs, derived from its children at
  // import, go in the existing columns. A child job records the node of the graph it runs
  // (`child_name`); the unique index makes "create this node's job" happen at most once per parent.
  `
  ALTER TABLE templates ADD COLUMN graph TEXT;
  ALTER TABLE jobs ADD COLUMN child_name TEXT;
  CREATE UNIQUE INDEX jobs_children ON jobs(parent, child_name);
  `,
  // 10: lists at depth, and small outputs in the database. A site keeps a million ended jobs, and asks
  // for the few that have not ended, failed or been deleted, newest first. Partial indexes hold only
  // those rows, in pk order, so such a list (and the lost-node sweep, and the job gauges of /metrics)
  // reads them and not the whole history. The poll uses jobs_queue; jobs_unended is migration 5's.
  `
  CREATE INDEX jobs_with_error ON jobs(pk) WHERE error_reason IS NOT NULL;
  CREATE INDEX jobs_deleted ON jobs(pk) WHERE deletion_time IS NOT NULL;
  -- Small outputs are kept here instead of in a file (blobs.ts, INLINE_MAX_BYTES); NULL: in the file.
  ALTER TABLE blobs ADD COLUMN content BLOB;
  `,
  // 11: the progress history of the dashboard's curves (live-log/progress-history.ts), one row a
  // point, instead of a file beside each attempt's live log.
  `
  CREATE TABLE progress_points (
    pk      INTEGER PRIMARY KEY,
    job     INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    attempt TEXT NOT NULL,
    point   TEXT NOT NULL
  );
  CREATE INDEX progress_points_attempt ON progress_points(job, attempt, pk);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Open (creating if needed) and migrate the database at `file`. WAL lets readers run beside the one
 * writer. `synchronous = NORMAL`: a commit is written to the WAL (it survives `kill -9`) but not
 * synced; the server answers only once a shared sync has made it survive a power cut too (group
 * commit, `durability.ts`). Whoever writes outside a request must wait for that barrier likewise.
 */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new NewerSchemaError(current, SCHEMA_VERSION);
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

const statements = new WeakMap<Db, Map<string, Statement>>();

/**
 * `db.prepare(sql)`, compiled once per database: compiling costs about as much as running a simple
 * statement, and the hot paths (identity, transitions) run the same few on every request. The
 * statement is shared, so never change its mode (`pluck`, `raw`, `expand`, `safeIntegers`).
 */
export function cachedStatement(db: Db, sql: string): Statement {
  let byText = statements.get(db);
  if (!byText) {
    byText = new Map();
    statements.set(db, byText);
  }
  let statement = byText.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    byText.set(sql, statement);
  }
  return statement;
}

const RECENT_STATEMENTS_MAX = 256;
const recent = new WeakMap<Db, Map<string, Statement>>();

/**
 * `db.prepare(sql)` for statements built from what clients send (list filters): the most recently
 * used {@link RECENT_STATEMENTS_MAX} per database are kept compiled, so the few filters that nodes
 * send over and over (the poll filter) are compiled once, while arbitrary ones cannot grow the cache
 * without bound. Shared like {@link cachedStatement}: never change its mode.
 */
export function recentStatement(db: Db, sql: string): Statement {
  let byText = recent.get(db);
  if (!byText) {
    byText = new Map();
    recent.set(db, byText);
  }
  let statement = byText.get(sql);
  if (statement) {
    // Most recently used last (a Map keeps insertion order).
    byText.delete(sql);
  } else {
    statement = db.prepare(sql);
    if (byText.size >= RECENT_STATEMENTS_MAX) byText.delete(byText.keys().next().value!);
  }
  byText.set(sql, statement);
  return statement;
}

type Runner = Database.Transaction<(fn: () => unknown) => unknown>;
const runners = new WeakMap<Db, Runner>();

/**
 * Run `fn` in a `BEGIN IMMEDIATE` transaction (the write lock taken before the first read, so a
 * concurrent writer cannot make a read stale), committed when it returns, rolled back when it throws.
 * The same as `db.transaction(fn).immediate()`, without building a new transaction wrapper on every
 * call (better-sqlite3 makes five functions per wrapper: a few per cent of a transition's CPU).
 * On a database that batches (`turn-batch.ts`) it runs in the turn's batch: as a savepoint, unless
 * it is the batch's first (then a failure rolls the batch back, which held nothing else).
 */
export function immediateTransaction<T>(db: Db, fn: () => T): T {
  if (joinTurnBatch(db)) {
    try {
      return fn();
    } catch (err) {
      abandonTurnBatch(db);
      throw err;
    }
  }
  let runner = runners.get(db);
  if (!runner) {
    runner = db.transaction((body: () => unknown) => body());
    runners.set(db, runner);
  }
  return runner.immediate(fn) as T;
}

/**
 * Run writes that need no atomicity (a row of a history) with the turn's other writes where the
 * database batches them (SQLite: they join the turn's batch and its commit), else statement by
 * statement: on PostgreSQL a transaction would add its round trips and take the writers' lock.
 */
export function writeWithTurn<T>(db: Db, fn: () => T): T {
  return batchesWritesPerTurn(db) ? immediateTransaction(db, fn) : fn();
}

/** Now as the ISO-8601 UTC string every timestamp column holds. */
export function nowIso(): string {
  return new Date().toISOString();
}
