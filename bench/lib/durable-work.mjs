// The work of the durable floor (bench/lib/durable-floor.mjs): the least a server must do to answer
// the lifecycle's requests as the API's contract asks, by hand on better-sqlite3, with none of our
// server's layers (no validation beyond the routes' own, no permissions beyond the node's owner, no
// events, metrics, logs or progress history). Per request:
//
// - the caller: a token already verified (here the one token `x`, user 1's), and the user's and the
//   node's rows in one read;
// - a transition: read the job (with its node's current job) and write it, as a savepoint of the
//   turn's one transaction, the way ours batches a turn's writes (src/server/store/turn-batch.ts);
//   the answer is built from the row read and what was written, not read again;
// - durability: no answer before an `fdatasync` of the WAL that started after its commit, one sync in
//   flight, started at the end of the turn, the transaction held open while it runs (group commit,
//   src/server/store/durability.ts); WAL checkpoints on a worker thread, as ours (the server's own
//   checkpointer, from the build: `npm run build` first);
// - the answer: the job as the API shapes it (its template, its outputs), ~300 bytes of JSON.
//
// With the indexes the API's goals need (the poll at depth, the lists).
import Database from 'better-sqlite3';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { startCheckpointer } from '../../dist/server/store/checkpointer.js';

/** A request the floor refuses, with its HTTP status. */
export class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const SCHEMA = `
  CREATE TABLE users (pk INTEGER PRIMARY KEY, username TEXT NOT NULL, is_active INTEGER NOT NULL, token_generation INTEGER NOT NULL);
  CREATE TABLE nodes (pk INTEGER PRIMARY KEY, owner INTEGER NOT NULL, current_job INTEGER, last_seen TEXT);
  CREATE TABLE templates (pk INTEGER PRIMARY KEY, name TEXT NOT NULL, version INTEGER NOT NULL);
  CREATE TABLE jobs (
    pk INTEGER PRIMARY KEY AUTOINCREMENT, template INTEGER NOT NULL, description TEXT NOT NULL, creator INTEGER NOT NULL,
    creation_time TEXT NOT NULL, input_values TEXT NOT NULL, parameter_values TEXT NOT NULL, node INTEGER,
    start_time TEXT, end_time TEXT, error_reason TEXT, progress_amount REAL NOT NULL DEFAULT 0, deletion_time TEXT
  );
  CREATE INDEX jobs_queue ON jobs(start_time, node, error_reason);
  CREATE INDEX jobs_node ON jobs(node);
  CREATE INDEX jobs_unended ON jobs(pk) WHERE end_time IS NULL;
  CREATE INDEX jobs_template ON jobs(template);
  CREATE TABLE outputs (pk INTEGER PRIMARY KEY, job INTEGER NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, content BLOB NOT NULL, creation_time TEXT NOT NULL);
  CREATE INDEX outputs_job ON outputs(job, name, type);
  INSERT INTO users VALUES (1, 'admin', 1, 0);
  INSERT INTO templates VALUES (1, 'bench-noop', 1);
`;

const now = () => new Date().toISOString();

/**
 * Open the floor's database in `dataDir`, with the nodes `nodePks` registered by user 1. Returns what
 * a front end calls: `caller`, `createJob`, the node transitions, and `whenDurable` before it answers.
 */
export async function openDurableWork({ dataDir, nodePks }) {
  const file = join(dataDir, 'floor.sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  const checkpointer = startCheckpointer(db, { warn: () => {}, error: (obj, msg) => console.error(msg, obj) });
  const addNode = db.prepare('INSERT INTO nodes (pk, owner) VALUES (?, 1)');
  for (const pk of nodePks) addNode.run(pk);

  const callerRows = db.prepare('SELECT u.pk, u.is_active, u.token_generation, n.pk AS node_pk, n.owner AS node_owner FROM users u LEFT JOIN nodes n ON n.pk = ? WHERE u.pk = ?');
  const jobWithNode = db.prepare(
    `SELECT jobs.*, t.name AS template_name, t.version AS template_version, n.current_job AS node_current_job
     FROM jobs JOIN templates t ON t.pk = jobs.template LEFT JOIN nodes n ON n.pk = ? WHERE jobs.pk = ?`,
  );
  const outputsOf = db.prepare('SELECT pk, name, type FROM outputs WHERE job = ? ORDER BY pk');
  const insertJob = db.prepare('INSERT INTO jobs (template, description, creator, creation_time, input_values, parameter_values) VALUES (?, ?, 1, ?, ?, ?)');
  const setNode = db.prepare('UPDATE jobs SET node = ? WHERE pk = ? AND node IS NULL');
  const setStart = db.prepare('UPDATE jobs SET start_time = ? WHERE pk = ?');
  const setProgress = db.prepare('UPDATE jobs SET progress_amount = ? WHERE pk = ?');
  const setEnd = db.prepare('UPDATE jobs SET end_time = ?, error_reason = ? WHERE pk = ?');
  const setCurrentJob = db.prepare('UPDATE nodes SET current_job = ? WHERE pk = ?');
  const insertOutput = db.prepare('INSERT INTO outputs (job, name, type, content, creation_time) VALUES (?, ?, ?, ?, ?)');
  const changes = db.prepare('SELECT total_changes()').pluck();
  const [begin, commit, savepoint, release, rollbackTo] = ['BEGIN IMMEDIATE', 'COMMIT', 'SAVEPOINT t', 'RELEASE t', 'ROLLBACK TO t'].map((sql) => db.prepare(sql));

  // --- the turn's transaction and group commit --------------------------------------------------
  let batchOpen = false;
  let syncing = false;
  let syncQueued = false;
  let synced = 0; // total_changes() covered by the last completed sync
  let waiting = []; // [target, answer]
  const wal = await open(`${file}-wal`, 'r');

  function commitBatch() {
    if (!batchOpen) return;
    commit.run();
    batchOpen = false;
  }

  /** Run `fn` as a savepoint of the turn's transaction; the turn's end (or the next sync) commits it. */
  function transaction(fn) {
    if (!batchOpen) {
      begin.run();
      batchOpen = true;
      setImmediate(() => syncing || commitBatch());
    }
    savepoint.run();
    try {
      const result = fn();
      release.run();
      return result;
    } catch (err) {
      rollbackTo.run();
      release.run();
      throw err;
    }
  }

  function sync() {
    syncing = true;
    commitBatch();
    const target = changes.get();
    wal.datasync().then(() => {
      syncing = false;
      synced = target;
      const ready = waiting.filter(([t]) => t <= target);
      waiting = waiting.filter(([t]) => t > target);
      for (const [, answer] of ready) answer();
      if (waiting.length > 0) queueSync();
      else setImmediate(() => syncing || commitBatch());
    });
  }

  /** Start a sync at the end of this turn, so that the turn's other answers share it. */
  function queueSync() {
    if (syncing || syncQueued) return;
    syncQueued = true;
    setImmediate(() => {
      syncQueued = false;
      if (!syncing) sync();
    });
  }

  // --- the API's work ---------------------------------------------------------------------------
  const jobJson = (row) => ({
    pk: row.pk,
    template: { pk: row.template, name: row.template_name, version: row.template_version },
    parent: null,
    start_time: row.start_time,
    end_time: row.end_time,
    error_reason: row.error_reason,
    input_values: JSON.parse(row.input_values),
    parameter_values: JSON.parse(row.parameter_values),
    node: row.node,
    outputs: outputsOf.all(row.pk),
    description: row.description,
    is_cancelled: false,
    creator: row.creator,
    creation_time: row.creation_time,
    deletion_time: row.deletion_time,
  });

  /**
   * One node transition on job `pk`: `check` refuses (throws), `write` changes the job and returns the
   * columns it wrote; the job as written.
   */
  function nodeTransition(pk, nodePk, check, write) {
    return transaction(() => {
      const job = jobWithNode.get(nodePk, pk);
      if (job === undefined) throw new Refused(404, `no job ${pk}`);
      check(job);
      return jobJson({ ...job, ...write(job) });
    });
  }

  const working = (nodePk) => (job) => {
    if (job.node !== nodePk || job.node_current_job !== job.pk || job.start_time === null || job.end_time !== null) throw new Refused(406, 'not working it');
  };

  return {
    /** The node the request acts as (null: none), once its token and `Node-Id` are checked. */
    caller(authorization, nodeId) {
      if (authorization !== 'Bearer x') throw new Refused(401, 'bad token');
      const nodePk = nodeId === undefined ? null : Number(nodeId);
      const who = callerRows.get(nodePk, 1);
      if (!who?.is_active || (nodePk !== null && who.node_owner !== who.pk)) throw new Refused(403, 'not allowed');
      return nodePk;
    },
    createJob(templatePk, spec, nodePk) {
      return transaction(() => {
        const { lastInsertRowid } = insertJob.run(templatePk, String(spec.description ?? ''), now(), JSON.stringify(spec.input_values ?? {}), JSON.stringify(spec.parameter_values ?? {}));
        return jobJson(jobWithNode.get(nodePk, lastInsertRowid));
      });
    },
    acquire(pk, nodePk) {
      return nodeTransition(
        pk,
        nodePk,
        (job) => {
          if (job.node !== null || job.start_time !== null) throw new Refused(406, 'not acquirable');
        },
        () => {
          setNode.run(nodePk, pk);
          return { node: nodePk };
        },
      );
    },
    start(pk, nodePk) {
      return nodeTransition(
        pk,
        nodePk,
        (job) => {
          if (job.node !== nodePk || job.start_time !== null || job.node_current_job !== null) throw new Refused(406, 'cannot start');
        },
        () => {
          const start_time = now();
          setStart.run(start_time, pk);
          setCurrentJob.run(pk, nodePk);
          return { start_time };
        },
      );
    },
    progress(pk, nodePk, amount) {
      return nodeTransition(pk, nodePk, working(nodePk), () => {
        setProgress.run(amount, pk);
        return { progress_amount: amount };
      });
    },
    output(pk, nodePk, name, type, content) {
      return nodeTransition(pk, nodePk, working(nodePk), () => {
        insertOutput.run(pk, name, type, content, now());
        return {};
      });
    },
    finish(pk, nodePk, success) {
      return nodeTransition(pk, nodePk, working(nodePk), () => {
        const end = { end_time: now(), error_reason: success ? null : 'failed' };
        setCurrentJob.run(null, nodePk);
        setEnd.run(end.end_time, end.error_reason, pk);
        return end;
      });
    },
    /** Call `answer` once every change made so far is on disk. */
    whenDurable(answer) {
      const target = changes.get();
      if (target <= synced) return answer();
      waiting.push([target, answer]);
      queueSync();
    },
    /** Stop the checkpoint worker and close the database. */
    async close() {
      await checkpointer.close();
      await wal.close();
      db.close();
    },
  };
}
