// The journal (docs/ARCHITECTURE.md, "The journal"): what a job's bookkeeping in the agent's journal (SQLite, WAL, synchronous=FULL)
// costs next to the job. Uses the agent's own journal module to run N complete bookkeeping sequences
// of a successful job, as the job runner writes them:
//
//   beginAcquire, acquired, preparing, starting, running (pid), exit status, output registered
//   (the job's file and its log), uploading, per output: uploading → uploaded, finishing, done
//
// = 8 state transitions and 15 commits (each an fsync). Baselines: a bare write+fdatasync loop on
// the same disk (the floor of any durable write), and the wall time of a whole no-op job through
// `serve` + `run` (create-job → job ended, wake-up on).
//
//   node bench/journal.bench.mjs [--jobs 500] [--noop-jobs 20]
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { CLI } from './lib/processes.mjs';
import {
  cleanup,
  createJob,
  importShellTemplate,
  loadAverage,
  positive,
  session,
  sleep,
  startAgent,
  startTrackedServe,
  stopProcess,
  tempDir,
  waitJobEnd,
} from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: { jobs: { type: 'string', default: '500' }, 'noop-jobs': { type: 'string', default: '20' } },
});
const JOBS = positive('jobs', args.jobs);
const NOOP_JOBS = positive('noop-jobs', args['noop-jobs']);
const TRANSITIONS_PER_JOB = 8;

// The journal as the built agent has it (dist/agent/journal/index.js beside the CLI).
const journalModule = new URL('../agent/journal/index.js', `file://${CLI}`).href;
const { openJournal } = await import(journalModule);

function bookkeeping(dir) {
  const journal = openJournal({ path: join(dir, 'journal.sqlite3'), serverUrl: 'http://127.0.0.1:8000' });
  const commitMs = [];
  const jobMs = [];
  let commits = 0;
  const timed = (fn) => {
    const t0 = performance.now();
    const result = fn();
    commitMs.push(performance.now() - t0);
    commits++;
    return result;
  };
  const sha = 'a'.repeat(64);
  const t0 = performance.now();
  try {
    for (let pk = 1; pk <= JOBS; pk++) {
      const j0 = performance.now();
      const jobDir = join(dir, 'work', `job-${pk}`);
      timed(() => journal.beginAcquire({ jobPk: pk, nodePk: 1, templatePk: 1, slot: 0, jobDir }));
      timed(() => journal.transition(pk, 'acquired'));
      timed(() => journal.transition(pk, 'preparing', { jobDir }));
      timed(() => journal.transition(pk, 'starting'));
      timed(() => journal.transition(pk, 'running', { pid: 4242, pidStart: '123456' }));
      timed(() => journal.record(pk, { exitCode: 0, exitSignal: null }));
      const outputs = [
        { name: 'result.bin', type: 'BLOB', path: join(jobDir, 'output', 'result.bin'), size: 1024, sha256: sha },
        { name: 'log', type: 'BLOB', path: join(jobDir, 'job.log'), size: 200, sha256: sha },
      ];
      for (const output of outputs) timed(() => journal.registerOutput(pk, output));
      timed(() => journal.transition(pk, 'uploading'));
      for (const output of outputs) {
        timed(() => journal.markOutput(pk, output, 'uploading'));
        timed(() => journal.markOutput(pk, output, 'uploaded'));
      }
      timed(() => journal.transition(pk, 'finishing', { finish: { error: null } }));
      timed(() => journal.transition(pk, 'done'));
      jobMs.push(performance.now() - j0);
    }
  } finally {
    journal.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  commitMs.sort((a, b) => a - b);
  jobMs.sort((a, b) => a - b);
  return {
    commitsPerS: commits / seconds,
    transitionsPerS: (JOBS * TRANSITIONS_PER_JOB) / seconds,
    commitsPerJob: commits / JOBS,
    commitP50: percentile(commitMs, 50),
    commitP99: percentile(commitMs, 99),
    jobP50: percentile(jobMs, 50),
    jobMean: jobMs.reduce((s, v) => s + v, 0) / jobMs.length,
  };
}

/** The floor: append 200 bytes and fdatasync, as many times as the journal committed. */
function bareFsync(dir, count) {
  const fd = openSync(join(dir, 'fsync.bin'), 'w');
  const buf = Buffer.alloc(200, 1);
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, buf);
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  return count / ((performance.now() - t0) / 1000);
}

async function noopJobs(dir) {
  const server = await startTrackedServe();
  const getToken = session(server.url);
  const templatePk = await importShellTemplate(server.url, await getToken(), 'bench-noop', 'exit 0\n');
  const agent = startAgent({ serverUrl: server.url, dir, env: { UFDL_AGENT_WAIT: '30' } });
  const whole = [];
  try {
    for (let i = 0; i < NOOP_JOBS + 2; i++) {
      await sleep(50);
      const created = await createJob(server.url, await getToken(), templatePk);
      const job = await waitJobEnd(server.url, getToken, created.pk, { timeoutMs: 30_000 });
      if (i >= 2) whole.push(Date.parse(job.end_time) - created.startedAt); // two warm-ups
    }
  } finally {
    await stopProcess(agent);
    await server.stop();
  }
  whole.sort((a, b) => a - b);
  return percentile(whole, 50);
}

const load0 = await loadAverage();
let journal;
let fsyncPerS;
let noopMs;
try {
  const dir = await tempDir('ufdl-bench-journal-');
  console.log(`journal: ${JOBS} bookkeeping sequences …`);
  journal = bookkeeping(dir);
  fsyncPerS = bareFsync(dir, Math.round(JOBS * journal.commitsPerJob));
  console.log(`journal: ${NOOP_JOBS} no-op jobs through serve + run …`);
  noopMs = await noopJobs(await tempDir('ufdl-bench-noop-'));
} finally {
  await cleanup();
}
const load1 = await loadAverage();
const load = `${load0} → ${load1}`;

console.log(`\njournal benchmark — ${JOBS} jobs, synchronous=FULL, ${machineLabel()}, load ${load}`);
console.log(`commits/s                 ${journal.commitsPerS.toFixed(0)}  (${journal.commitsPerJob} commits per job; p50 ${journal.commitP50.toFixed(2)} ms, p99 ${journal.commitP99.toFixed(2)} ms)`);
console.log(`transitions/s             ${journal.transitionsPerS.toFixed(0)}`);
console.log(`bare write+fdatasync/s    ${fsyncPerS.toFixed(0)}  (the disk's floor)`);
console.log(`bookkeeping ms per job    ${journal.jobMean.toFixed(2)} mean, ${journal.jobP50.toFixed(2)} p50`);
console.log(`whole no-op job (p50)     ${noopMs.toFixed(1)} ms  → bookkeeping is ${((journal.jobMean / noopMs) * 100).toFixed(0)} % of it`);

await recordResult(
  'Journal',
  ['date', 'machine', 'load avg before → after', 'jobs', 'commits/job', 'commits/s', 'transitions/s', 'commit p50/p99 ms', 'bare fdatasync/s', 'bookkeeping ms/job', 'no-op job ms (p50)', 'share'],
  [
    today(),
    machineLabel(),
    load,
    JOBS,
    journal.commitsPerJob,
    journal.commitsPerS.toFixed(0),
    journal.transitionsPerS.toFixed(0),
    `${journal.commitP50.toFixed(2)}/${journal.commitP99.toFixed(2)}`,
    fsyncPerS.toFixed(0),
    journal.jobMean.toFixed(2),
    noopMs.toFixed(1),
    `${((journal.jobMean / noopMs) * 100).toFixed(0)} %`,
  ],
);
