// The dashboard's jobs table with 100,000 jobs (by default): how long one page takes to answer, for
// each state filter and for one template, on the first page and deep in the history (keyset paging).
// The server runs in this process (the built dist/) on a database filled directly through SQLite.
//
//   node bench/dashboard-table.bench.mjs [--jobs 100000] [--rounds 50]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { loadAverage, positive } from './lib/rig.mjs';

const { values: args } = parseArgs({ options: { jobs: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '50' } } });
const JOBS = positive('jobs', args.jobs);
const ROUNDS = positive('rounds', args.rounds);
const { buildApp } = await import('../dist/server/app.js');

const load0 = await loadAverage();
const dir = await mkdtemp(join(tmpdir(), 'ufdl-bench-table-'));
const rows = [];
try {
  const { app } = await buildApp({ dataDir: dir, port: 0, adminPassword: 'bench-admin-password', logLevel: false });
  await app.ready();
  const db = new Database(join(dir, 'ufdl.sqlite3'));
  const now = Date.now();
  db.transaction(() => {
    const t = [1, 2, 3].map((i) => Number(db.prepare(`INSERT INTO templates (name, version, type, executor_class, parameters, creator, creation_time) VALUES (?, 1, 'Run', 'ufdl_agent.Shell', '{}', 1, ?)`).run(`t${i}`, new Date().toISOString()).lastInsertRowid));
    const insert = db.prepare(`INSERT INTO jobs (template, input_values, parameter_values, creator, creation_time, start_time, end_time, error_reason, progress_amount) VALUES (?, '{}', '{}', 1, ?, ?, ?, ?, ?)`);
    for (let i = 0; i < JOBS; i++) {
      const at = new Date(now - (JOBS - i) * 1000).toISOString();
      // Mostly finished history, some errors and cancellations; the newest few still queued or running.
      const recent = i >= JOBS - 50;
      const kind = recent ? (i % 2 ? 'created' : 'running') : i % 20 === 0 ? 'errored' : 'finished';
      insert.run(t[i % 3], at, kind === 'created' ? null : at, kind === 'finished' || kind === 'errored' ? at : null, kind === 'errored' ? 'failed' : null, kind === 'finished' ? 1 : 0.5);
    }
  })();
  db.close();
  const { access } = (await app.inject({ method: 'POST', url: '/v1/auth/obtain', payload: { username: 'admin', password: 'bench-admin-password' } })).json();
  const page = async (query) => {
    const t0 = performance.now();
    const res = await app.inject({ method: 'POST', url: '/v1/ufdl-agent/jobs/table', headers: { authorization: `Bearer ${access}` }, payload: query });
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`);
    return performance.now() - t0;
  };
  const cases = [
    ['all, first page', {}],
    ['all, page at job 50,000', { before: Math.floor(JOBS / 2) }],
    ['running', { state: 'running' }],
    ['active', { state: 'active' }],
    ['errored', { state: 'errored' }],
    ['errored, deep', { state: 'errored', before: Math.floor(JOBS / 10) }],
    ['one template', { template: 2 }],
  ];
  for (const [name, query] of cases) {
    await page(query);
    const times = [];
    for (let i = 0; i < ROUNDS; i++) times.push(await page(query));
    times.sort((a, b) => a - b);
    rows.push([name, percentile(times, 50), percentile(times, 99)]);
  }
  await app.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
const load = `${load0} → ${await loadAverage()}`;
console.log(`\ndashboard table — ${JOBS} jobs — ${machineLabel()} — load ${load}`);
console.log('query                      p50 ms   p99 ms');
for (const [name, p50, p99] of rows) console.log(`${name.padEnd(26)} ${p50.toFixed(1).padStart(6)}   ${p99.toFixed(1).padStart(6)}`);
const worst = Math.max(...rows.map((r) => r[2]));
await recordResult(
  'Dashboard jobs table',
  ['date', 'machine', 'load avg before → after', 'jobs', 'p50 / p99 ms per page (all; deep; running; errored deep; one template)', 'worst p99'],
  [today(), machineLabel(), load, JOBS, rows.filter((_, i) => [0, 1, 2, 5, 6].includes(i)).map((r) => `${r[1].toFixed(1)} / ${r[2].toFixed(1)}`).join('; '), `${worst.toFixed(1)} ms`],
);
