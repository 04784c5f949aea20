// Dispatch (docs/BENCHMARKS.md, "Goals"): from create-job to the child's first instruction. The job's script starts with
// `date +%s%N > <stamps>/<pk>`; the latency is that stamp minus the wall clock just before the
// create-job request was sent. Jobs are created one at a time, each after the previous one ended, so
// every job meets an idle agent (one slot).
//
// Two modes:
//   wake  `serve` with extensions, agent `UFDL_AGENT_WAIT=30`: the agent's poll is held by the server
//         and answered when the job is created. Goal: median under 50 ms.
//   poll  `serve --no-extensions` (a reference-like server), agent at its default poll schedule
//         (10 s, then 30 s, ±20 % jitter). Each job is created at a uniformly random moment in the
//         first 7.5 s after the agent's last (empty) poll, so this is slow by design: fewer jobs.
//         Goal: within one poll interval (10 s + 20 % jitter = 12 s).
//
//   node bench/dispatch.bench.mjs [--jobs 200] [--poll-jobs 20] [--modes wake,poll]
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
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
  options: {
    jobs: { type: 'string', default: '200' },
    'poll-jobs': { type: 'string', default: '20' },
    modes: { type: 'string', default: 'wake,poll' },
  },
});
const MODES = args.modes.split(',').map((m) => m.trim());
for (const m of MODES) if (m !== 'wake' && m !== 'poll') throw new Error(`--modes: unknown mode '${m}' (wake, poll)`);
const JOBS = { wake: positive('jobs', args.jobs), poll: positive('poll-jobs', args['poll-jobs']) };
const POLL_FIRST_S = 10;
const POLL_JITTER = 0.2;
const POLL_LIMIT_MS = POLL_FIRST_S * 1000 * (1 + POLL_JITTER);
const WAKE_GOAL_MS = 50;

const iso = (s) => Date.parse(s);

async function runMode(mode) {
  const dir = await tempDir(`ufdl-bench-dispatch-${mode}-`);
  const stamps = join(dir, 'stamps');
  await mkdir(stamps);
  const server = await startTrackedServe({ extraArgs: mode === 'poll' ? ['--no-extensions'] : [] });
  const getToken = session(server.url);
  // The first instruction records the time; `exit 0` keeps the job a no-op.
  const script = `date +%s%N > '${stamps}'/"$UFDL_JOB_PK"\nexit 0\n`;
  const templatePk = await importShellTemplate(server.url, await getToken(), `bench-dispatch-${mode}`, script);
  const agent = startAgent({ serverUrl: server.url, dir, env: mode === 'wake' ? { UFDL_AGENT_WAIT: '30' } : {} });
  const load0 = await loadAverage();
  const samples = [];
  try {
    // Warm-up (not counted): the agent registers, compiles its code paths, caches the template.
    const warmups = mode === 'wake' ? 3 : 1;
    for (let i = 0; i < warmups; i++) {
      const { pk } = await createJob(server.url, await getToken(), templatePk);
      await waitJobEnd(server.url, getToken, pk, { timeoutMs: 60_000 });
    }
    const n = JOBS[mode];
    for (let i = 0; i < n; i++) {
      // Let the agent go back to waiting: a short random pause with wake-up; with polling a random
      // moment of the first poll interval (the agent polls once at once when a job ends, then sleeps).
      await sleep(mode === 'wake' ? 20 + Math.random() * 80 : Math.random() * 7500);
      const token = await getToken();
      const created = await createJob(server.url, token, templatePk);
      const job = await waitJobEnd(server.url, getToken, created.pk, { timeoutMs: mode === 'wake' ? 30_000 : 60_000 });
      const stampNs = BigInt((await readFile(join(stamps, String(created.pk)), 'utf8')).trim());
      const stampMs = Number(stampNs / 1000n) / 1000;
      samples.push({
        latencyMs: stampMs - created.startedAt,
        createMs: created.answeredAt - created.startedAt,
        toStartCallMs: iso(job.start_time) - created.startedAt,
        spawnMs: stampMs - iso(job.start_time),
        wholeJobMs: iso(job.end_time) - created.startedAt,
      });
      if (mode === 'poll') process.stdout.write(`  poll job ${i + 1}/${n}: ${(samples.at(-1).latencyMs / 1000).toFixed(2)} s\n`);
    }
  } finally {
    await stopProcess(agent);
    await server.stop();
  }
  const load1 = await loadAverage();
  const sorted = (key) => samples.map((s) => s[key]).sort((a, b) => a - b);
  const lat = sorted('latencyMs');
  return {
    mode,
    n: samples.length,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.at(-1),
    min: lat[0],
    createP50: percentile(sorted('createMs'), 50),
    toStartP50: percentile(sorted('toStartCallMs'), 50),
    spawnP50: percentile(sorted('spawnMs'), 50),
    wholeJobP50: percentile(sorted('wholeJobMs'), 50),
    load: `${load0} → ${load1}`,
  };
}

const results = [];
try {
  for (const mode of MODES) {
    console.log(`dispatch: ${mode} mode, ${JOBS[mode]} jobs …`);
    results.push(await runMode(mode));
  }
} finally {
  await cleanup();
}

const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const goalOf = (r) => (r.mode === 'wake' ? r.p50 < WAKE_GOAL_MS : r.max <= POLL_LIMIT_MS);
const goalText = (r) => (r.mode === 'wake' ? `median < ${WAKE_GOAL_MS} ms` : `max ≤ ${fmt(POLL_LIMIT_MS)} (one poll interval)`);
console.log(`\ndispatch benchmark — create-job → child's first instruction — ${machineLabel()}`);
console.log('mode   jobs     p50        p99        max        create call p50  → start call p50  start → child p50  whole job p50  load avg (1/5/15 min)');
for (const r of results) {
  console.log(
    `${r.mode.padEnd(6)} ${String(r.n).padStart(4)} ${fmt(r.p50).padStart(10)} ${fmt(r.p99).padStart(10)} ${fmt(r.max).padStart(10)}   ${fmt(r.createP50).padStart(10)}       ${fmt(r.toStartP50).padStart(10)}       ${fmt(r.spawnP50).padStart(10)}   ${fmt(r.wholeJobP50).padStart(10)}   ${r.load}`,
  );
}
for (const r of results) console.log(`${r.mode}: goal ${goalText(r)} — ${goalOf(r) ? 'MET' : 'NOT MET'}`);

for (const r of results) {
  await recordResult(
    'Dispatch',
    ['date', 'machine', 'load avg before → after', 'mode', 'jobs', 'p50', 'p99', 'max', '→ start call p50', 'start → child p50', 'whole no-op job p50', 'goal', 'met'],
    [today(), machineLabel(), r.load, r.mode, r.n, fmt(r.p50), fmt(r.p99), fmt(r.max), fmt(r.toStartP50), fmt(r.spawnP50), fmt(r.wholeJobP50), goalText(r), goalOf(r) ? 'yes' : 'no'],
  );
}
