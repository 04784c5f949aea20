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
//   wakeup  no agent: a bare long poll (`POST /v1/jobs/list`, `X-UFDL-Wait: 30`, the agent's filter)
//         waits; the latency is from create-job sent to that list's answer received (the wake-up
//         alone, without the agent's journal or the child's spawn). Goal with several replicas: a job
//         created on replica A wakes a node waiting on replica B within 100 ms.
//
// `--store postgres --replicas 3` (or a list, `--store sqlite,postgres:1,postgres:3`, to compare at
// the same load) runs the server on a throw-away PostgreSQL cluster with that many `serve` processes
// on one database and data directory. Jobs are then created on replica 1 while the agent (or the
// long poll) waits on replica 2: every wake-up crosses replicas (LISTEN/NOTIFY). Such runs, and the
// wakeup mode, record their rows under "PostgreSQL and replicas".
//
//   node bench/dispatch.bench.mjs [--jobs 200] [--poll-jobs 20] [--modes wake,poll,wakeup]
//                                 [--store sqlite|postgres[:N],…] [--replicas N]
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pollFilter } from '../dist/protocol/filter.js';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { call } from './lib/processes.mjs';
import { onlySqlite, parseStores, recordStoreRow, startStore } from './lib/stores.mjs';
import {
  cleanup,
  createJob,
  importShellTemplate,
  loadAverage,
  positive,
  session,
  sleep,
  startAgent,
  stopProcess,
  tempDir,
  track,
  waitJobEnd,
} from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '200' },
    'poll-jobs': { type: 'string', default: '20' },
    modes: { type: 'string', default: 'wake,poll' },
    store: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '1' },
  },
});
const MODES = args.modes.split(',').map((m) => m.trim());
for (const m of MODES) if (!['wake', 'poll', 'wakeup'].includes(m)) throw new Error(`--modes: unknown mode '${m}' (wake, poll, wakeup)`);
const STORES = parseStores(args.store, args.replicas);
const JOBS = { wake: positive('jobs', args.jobs), wakeup: positive('jobs', args.jobs), poll: positive('poll-jobs', args['poll-jobs']) };
const POLL_FIRST_S = 10;
const POLL_JITTER = 0.2;
const POLL_LIMIT_MS = POLL_FIRST_S * 1000 * (1 + POLL_JITTER);
const WAKE_GOAL_MS = 50;
const CROSS_REPLICA_GOAL_MS = 100;

const iso = (s) => Date.parse(s);

async function runMode(mode, spec) {
  const dir = await tempDir(`ufdl-bench-dispatch-${mode}-`);
  const stamps = join(dir, 'stamps');
  await mkdir(stamps);
  const store = await startStore(spec, { extraArgs: mode === 'poll' ? ['--no-extensions'] : [] });
  for (const server of store.servers) track(server.child);
  // Jobs are created on the first replica; the agent (or the long poll) waits on the second.
  const createUrl = store.urls[0];
  const waitUrl = store.urls[Math.min(1, store.urls.length - 1)];
  const getToken = session(createUrl);
  // The first instruction records the time; `exit 0` keeps the job a no-op.
  const script = `date +%s%N > '${stamps}'/"$UFDL_JOB_PK"\nexit 0\n`;
  const templatePk = await importShellTemplate(createUrl, await getToken(), `bench-dispatch-${mode}`, script);
  const load0 = await loadAverage();
  let samples;
  try {
    samples = mode === 'wakeup' ? await measureWakeups(createUrl, waitUrl, getToken, templatePk) : await measureDispatch(mode, createUrl, waitUrl, getToken, templatePk, dir, stamps);
  } finally {
    await store.stop();
  }
  const load1 = await loadAverage();
  return summarise(mode, spec, samples, `${load0} → ${load1}`);
}

/** Create-job on `createUrl` → the child's first instruction, with one agent working for `waitUrl`. */
async function measureDispatch(mode, createUrl, waitUrl, getToken, templatePk, dir, stamps) {
  const agent = startAgent({ serverUrl: waitUrl, dir, env: mode === 'wake' ? { UFDL_AGENT_WAIT: '30' } : {} });
  const samples = [];
  try {
    // Warm-up (not counted): the agent registers, compiles its code paths, caches the template.
    const warmups = mode === 'wake' ? 3 : 1;
    for (let i = 0; i < warmups; i++) {
      const { pk } = await createJob(createUrl, await getToken(), templatePk);
      await waitJobEnd(createUrl, getToken, pk, { timeoutMs: 60_000 });
    }
    const n = JOBS[mode];
    for (let i = 0; i < n; i++) {
      // Let the agent go back to waiting: a short random pause with wake-up; with polling a random
      // moment of the first poll interval (the agent polls once at once when a job ends, then sleeps).
      await sleep(mode === 'wake' ? 20 + Math.random() * 80 : Math.random() * 7500);
      const token = await getToken();
      const created = await createJob(createUrl, token, templatePk);
      const job = await waitJobEnd(createUrl, getToken, created.pk, { timeoutMs: mode === 'wake' ? 30_000 : 60_000 });
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
  }
  return samples;
}

/**
 * Create-job on `createUrl` → the answer to a long poll waiting on `waitUrl` (a registered node with
 * the agent's filter); the node then acquires, starts and finishes the job there, so the queue is
 * empty again for the next one.
 */
async function measureWakeups(createUrl, waitUrl, getToken, templatePk) {
  const node = await call(waitUrl, 'POST', '/v1/nodes/create', { token: await getToken(), json: { ip: '127.0.0.1', index: 0, cpu_mem: 1 << 30 } });
  const filter = pollFilter();
  const nodeCall = async (method, path, options = {}) => call(waitUrl, method, path, { token: await getToken(), nodeId: node.pk, ...options });
  const listUntilJob = async () => {
    for (;;) {
      const jobs = await nodeCall('POST', '/v1/jobs/list', { json: filter, headers: { 'x-ufdl-wait': '30', 'x-ufdl-limit': '32' } });
      if (jobs.length > 0) return { jobs, answeredAt: performance.timeOrigin + performance.now() };
    }
  };
  const samples = [];
  const n = JOBS.wakeup;
  for (let i = -3; i < n; i++) {
    const answer = listUntilJob();
    // Let the poll reach the server and wait there.
    await sleep(20 + Math.random() * 80);
    const created = await createJob(createUrl, await getToken(), templatePk);
    const { jobs, answeredAt } = await answer;
    if (jobs[0].pk !== created.pk) throw new Error(`the long poll listed job ${jobs[0].pk}, not the new job ${created.pk}`);
    await nodeCall('GET', `/v1/jobs/${created.pk}/acquire`);
    await nodeCall('POST', `/v1/jobs/${created.pk}/start`, { json: {} });
    await nodeCall('POST', `/v1/jobs/${created.pk}/finish`, { json: { success: true } });
    // The first three are the warm-up.
    if (i >= 0) samples.push({ latencyMs: answeredAt - created.startedAt, createMs: created.answeredAt - created.startedAt });
  }
  return samples;
}

function summarise(mode, spec, samples, load) {
  const sorted = (key) => samples.map((s) => s[key]).sort((a, b) => a - b);
  const lat = sorted('latencyMs');
  const p50Of = (key) => (samples[0]?.[key] === undefined ? NaN : percentile(sorted(key), 50));
  return {
    mode,
    spec,
    n: samples.length,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.at(-1),
    min: lat[0],
    createP50: p50Of('createMs'),
    toStartP50: p50Of('toStartCallMs'),
    spawnP50: p50Of('spawnMs'),
    wholeJobP50: p50Of('wholeJobMs'),
    load,
  };
}

const results = [];
try {
  for (const mode of MODES) {
    for (const spec of STORES) {
      console.log(`dispatch: ${mode} mode, ${spec.label}, ${JOBS[mode]} jobs …`);
      results.push(await runMode(mode, spec));
    }
  }
} finally {
  await cleanup();
}

const fmt = (ms) => (Number.isNaN(ms) ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const crossReplica = (r) => r.spec.replicas > 1;
const goalOf = (r) => (r.mode === 'poll' ? r.max <= POLL_LIMIT_MS : r.mode === 'wakeup' && crossReplica(r) ? r.p99 < CROSS_REPLICA_GOAL_MS : r.p50 < WAKE_GOAL_MS);
const goalText = (r) =>
  r.mode === 'poll' ? `max ≤ ${fmt(POLL_LIMIT_MS)} (one poll interval)` : r.mode === 'wakeup' && crossReplica(r) ? `p99 < ${CROSS_REPLICA_GOAL_MS} ms across replicas` : `median < ${WAKE_GOAL_MS} ms`;
const what = { wake: 'create-job → child’s first instruction', poll: 'create-job → child’s first instruction', wakeup: 'create-job → waiting list answered' };
console.log(`\ndispatch benchmark — ${machineLabel()}`);
console.log('mode    store             jobs     p50        p99        max        create call p50  → start call p50  start → child p50  whole job p50  load avg (1/5/15 min)');
for (const r of results) {
  console.log(
    `${r.mode.padEnd(7)} ${r.spec.label.padEnd(15)} ${String(r.n).padStart(4)} ${fmt(r.p50).padStart(10)} ${fmt(r.p99).padStart(10)} ${fmt(r.max).padStart(10)}   ${fmt(r.createP50).padStart(10)}       ${fmt(r.toStartP50).padStart(10)}       ${fmt(r.spawnP50).padStart(10)}   ${fmt(r.wholeJobP50).padStart(10)}   ${r.load}`,
  );
}
for (const r of results) console.log(`${r.mode} on ${r.spec.label}: goal ${goalText(r)} — ${goalOf(r) ? 'MET' : 'NOT MET'}`);

for (const r of results) {
  if (onlySqlite(STORES) && r.mode !== 'wakeup') {
    await recordResult(
      'Dispatch',
      ['date', 'machine', 'load avg before → after', 'mode', 'jobs', 'p50', 'p99', 'max', '→ start call p50', 'start → child p50', 'whole no-op job p50', 'goal', 'met'],
      [today(), machineLabel(), r.load, r.mode, r.n, fmt(r.p50), fmt(r.p99), fmt(r.max), fmt(r.toStartP50), fmt(r.spawnP50), fmt(r.wholeJobP50), goalText(r), goalOf(r) ? 'yes' : 'no'],
    );
    continue;
  }
  const where = r.spec.replicas > 1 ? 'created on replica 1, waiting on replica 2' : 'one process';
  await recordStoreRow({
    load: r.load,
    benchmark: `dispatch ${r.mode} (${what[r.mode]}; ${where})`,
    spec: r.spec,
    result: `${r.n} jobs, max ${fmt(r.max)}`,
    latency: `${fmt(r.p50)} / ${fmt(r.p99)}`,
    errors: 0,
    notes:
      r.mode === 'wakeup'
        ? `goal ${goalText(r)}: ${goalOf(r) ? 'met' : 'not met'}`
        : `→ start call p50 ${fmt(r.toStartP50)}, start → child p50 ${fmt(r.spawnP50)}; goal ${goalText(r)}: ${goalOf(r) ? 'met' : 'not met'}`,
  });
}
