// What one statement costs the PostgreSQL store (docs/BENCHMARKS.md, "PostgreSQL and replicas"): the
// store's synchronous handle sends each statement to its connection thread and blocks the event loop
// until the answer (src/server/store/postgres/statement-thread.ts). Measured here, one statement
// after the other on a throw-away cluster on loopback:
//   - `PostgresDatabase.prepare('SELECT 1').get()` (the store's way),
//   - the same through `pg` directly, `await client.query(...)` (the asynchronous way),
//   - better-sqlite3's `prepare('SELECT 1').get()` (SQLite's way, in-process),
// an empty transition as the store runs one — BEGIN, the writer lock, one SELECT, COMMIT — on both
// stores, and a writing one (one row updated, so the COMMIT waits for the WAL's flush to disk; SQLite
// with synchronous=FULL, an fsync per commit, as PostgreSQL's durable COMMIT does). Wall time and this
// process's CPU time (both threads) per call, in µs.
//
//   node bench/pg-round-trip.bench.mjs [--calls 5000] [--rounds 3]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresDatabase } from '../dist/server/store/postgres/database.js';
import { machineLabel, recordResult, today } from './lib/machine.mjs';
import { PG_PASSWORD, PG_USER, startPgCluster } from './lib/pg-cluster.mjs';
import { loadAverage, positive } from './lib/rig.mjs';

const { values: args } = parseArgs({ options: { calls: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } } });
const CALLS = positive('calls', args.calls);
const ROUNDS = positive('rounds', args.rounds);

/** Mean wall and CPU µs per call of `fn` over CALLS calls (after 200 not counted). */
async function measure(fn) {
  for (let i = 0; i < 200; i++) await fn();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) await fn();
  const wallUs = ((performance.now() - t0) * 1000) / CALLS;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs, cpuUs: (cpu.user + cpu.system) / CALLS };
}

const load0 = await loadAverage();
const cluster = await startPgCluster();
const sqliteDir = await mkdtemp(join(tmpdir(), 'ufdl-bench-rt-'));
let handle;
let client;
const results = {};
try {
  const url = new URL(await cluster.createDatabase('ufdl_round_trip'));
  const connection = { host: url.hostname, port: Number(url.port), database: 'ufdl_round_trip', user: PG_USER, password: PG_PASSWORD };
  handle = new PostgresDatabase({ connection });
  client = new pg.Client(connection);
  await client.connect();
  const sqlite = new Database(join(sqliteDir, 'db.sqlite3'));
  sqlite.pragma('journal_mode = WAL');

  sqlite.pragma('synchronous = FULL');
  handle.exec('CREATE TABLE counter (pk integer PRIMARY KEY, n integer NOT NULL); INSERT INTO counter VALUES (1, 0)');
  sqlite.exec('CREATE TABLE counter (pk integer PRIMARY KEY, n integer NOT NULL); INSERT INTO counter VALUES (1, 0)');
  const pgSelect = handle.prepare('SELECT 1');
  const pgTransition = handle.transaction(() => pgSelect.get());
  const pgUpdate = handle.prepare('UPDATE counter SET n = n + 1 WHERE pk = 1');
  const pgWrite = handle.transaction(() => pgUpdate.run());
  const liteSelect = sqlite.prepare('SELECT 1');
  const liteTransition = sqlite.transaction(() => liteSelect.get());
  const liteUpdate = sqlite.prepare('UPDATE counter SET n = n + 1 WHERE pk = 1');
  const liteWrite = sqlite.transaction(() => liteUpdate.run());
  const cases = {
    'SELECT 1 — store handle on PostgreSQL (thread, blocking)': () => pgSelect.get(),
    'SELECT 1 — pg client, await': () => client.query({ name: 'rt', text: 'SELECT 1' }),
    'SELECT 1 — better-sqlite3': () => liteSelect.get(),
    'empty transition — store handle on PostgreSQL (4 statements)': () => pgTransition.immediate(),
    'empty transition — better-sqlite3 (BEGIN IMMEDIATE)': () => liteTransition.immediate(),
    'one-row UPDATE transition — store handle on PostgreSQL': () => pgWrite.immediate(),
    'one-row UPDATE transition — better-sqlite3, synchronous=FULL': () => liteWrite.immediate(),
  };
  // Rounds interleave the cases, so a change of the machine's load touches each alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(cases)) (results[name] ??= []).push(await measure(fn));
  }
  sqlite.close();
} finally {
  await client?.end().catch(() => {});
  await handle?.shutdown();
  await cluster.stop();
  await rm(sqliteDir, { recursive: true, force: true });
}
const load1 = await loadAverage();

const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
const summary = Object.fromEntries(
  Object.entries(results).map(([name, runs]) => [name, { wallUs: median(runs.map((r) => r.wallUs)), cpuUs: median(runs.map((r) => r.cpuUs)) }]),
);
console.log(`\nstatement round trip — ${CALLS} calls × ${ROUNDS} rounds (median of rounds) — ${machineLabel()} — load ${load0} → ${load1}`);
console.log('case                                                               wall µs/call   CPU µs/call (this process)');
for (const [name, s] of Object.entries(summary)) console.log(`${name.padEnd(66)} ${s.wallUs.toFixed(1).padStart(10)} ${s.cpuUs.toFixed(1).padStart(12)}`);

const cell = (name) => `${summary[name].wallUs.toFixed(1)} (${summary[name].cpuUs.toFixed(1)})`;
const names = Object.keys(summary);
await recordResult(
  'PostgreSQL statement round trip',
  ['date', 'machine', 'load avg before → after', 'calls × rounds', 'SELECT 1 store handle µs (CPU)', 'SELECT 1 pg await µs (CPU)', 'SELECT 1 better-sqlite3 µs (CPU)', 'empty transition PostgreSQL µs (CPU)', 'empty transition SQLite µs (CPU)', 'UPDATE transition PostgreSQL µs (CPU)', 'UPDATE transition SQLite FULL µs (CPU)'],
  [today(), machineLabel(), `${load0} → ${load1}`, `${CALLS} × ${ROUNDS}`, ...names.map(cell)],
);
