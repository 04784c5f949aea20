// Fill a server's database with a deep history: `ended` jobs that ran and finished (each with a log
// output), then `waiting` jobs nobody has acquired yet, newest last — what a busy site accumulates.
// Written straight into the SQLite file, with the server stopped, in one transaction per 100,000 rows.
import Database from 'better-sqlite3';

export function fillQueue(file, { templatePk, nodePk, creatorPk = 1, ended, waiting }) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const sha = '0'.repeat(64);
  db.prepare('INSERT OR IGNORE INTO blobs (sha256, size) VALUES (?, 10)').run(sha);
  const insertJob = db.prepare(
    `INSERT INTO jobs (template, description, input_values, parameter_values, node, start_time, end_time, progress_amount, creator, creation_time)
     VALUES (?, 'history', '{}', '{}', ?, ?, ?, ?, ?, ?)`,
  );
  const insertOutput = db.prepare(`INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, 'log', 'Compressed<JSON, 8>', ?, 10, ?, ?)`);
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  const iso = (ms) => new Date(ms).toISOString();
  const chunk = 100_000;
  for (let done = 0; done < ended; done += chunk) {
    db.transaction(() => {
      for (let i = done; i < Math.min(ended, done + chunk); i++) {
        const at = t0 + i * 1000;
        const { lastInsertRowid } = insertJob.run(templatePk, nodePk, iso(at + 100), iso(at + 900), 1, creatorPk, iso(at));
        insertOutput.run(lastInsertRowid, sha, creatorPk, iso(at + 900));
      }
    })();
  }
  db.transaction(() => {
    for (let i = 0; i < waiting; i++) insertJob.run(templatePk, null, null, null, 0, creatorPk, iso(t0 + (ended + i) * 1000));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}
