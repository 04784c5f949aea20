// Scale: thousands of idle nodes long-polling one server, then jobs created one at a time. Goals (per
// size of 1,000, 5,000 and 10,000 waiting nodes): one job costs ≤ 2 list answers and ≤ 2 acquire
// attempts on average (no thundering herd); dispatch — create-job sent to the winning acquire
// answered — p50 < 50 ms and p99 < 150 ms at 10,000; server memory < 50 KiB per waiting node.
//
// The nodes are simulated by generator processes (bench/lib/scale-worker.mjs, --per-worker nodes
// each, every node with its own keep-alive connection, each process on its own loopback source
// address). File descriptors: each process may hold 20,000 here (`ulimit -n`); the server holds one
// per node plus ~30 of its own, a generator one per node it simulates. The sizes are checked against
// the limit before a run.
//
//   node bench/scale.bench.mjs [--nodes 1000,5000,10000] [--jobs 100] [--interval 300] [--wait 30]
//                              [--per-worker 2500] [--bounded] [--profile DIR]
//
// --bounded: the smoke form CI runs (300 nodes, 8 jobs, 50 ms apart, nothing recorded): that it runs
// and every job is dispatched, not how fast. 300 nodes share one generator's source address: more
// than the server lets one address hold by default, so the smoke run also checks that the benchmark
// lifts that cap (below) — without it, every size past 256 nodes waited in vain for its polls.
import { fork, execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { call, procStats } from './lib/processes.mjs';
import { createClient } from './lib/http-client.mjs';
import { cleanup, importShellTemplate, loadAverage, positive, profileArgs, session, sleep, startTrackedServe, stopProcess, track } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000,5000,10000' },
    jobs: { type: 'string', default: '100' },
    interval: { type: 'string', default: '300' },
    wait: { type: 'string', default: '30' },
    'per-worker': { type: 'string', default: '2500' },
    bounded: { type: 'boolean', default: false },
    // A CPU profile of each server into this directory; see bench/lib/profile-summary.mjs.
    profile: { type: 'string' },
  },
});
const BOUNDED = args.bounded;
const SIZES = BOUNDED ? [300] : args.nodes.split(',').map((n) => positive('nodes', n.trim()));
const JOBS = BOUNDED ? 8 : positive('jobs', args.jobs);
const INTERVAL_MS = BOUNDED ? 50 : positive('interval', args.interval);
const WAIT_S = positive('wait', args.wait);
const PER_WORKER = positive('per-worker', args['per-worker']);
const RECORD = !BOUNDED && !process.env.UFDL_BENCH_NO_RECORD;
const RAMP_PER_SECOND = 2000;
const GOALS = { answersPerJob: 2, acquiresPerJob: 2, p50Ms: 50, p99Ms: 150, kibPerNode: 50 };

const fdLimit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
// The server holds a socket per node, and takes at most 80 % of its descriptors, less 100 for its
// database, WAL, logs and listening sockets, in connections (serve.max_connections' default).
const serverConnections = Math.floor(fdLimit * 0.8) - 100;
for (const n of SIZES) {
  if (n > serverConnections) {
    console.error(
      `--nodes ${n}: the server takes at most ${serverConnections} connections with ${fdLimit} file descriptors a process (ulimit -n); raise the limit or run fewer nodes`,
    );
    process.exit(2);
  }
}
if (PER_WORKER + 100 > fdLimit) {
  console.error(`--per-worker ${PER_WORKER}: a generator process may hold ${fdLimit} file descriptors (ulimit -n)`);
  process.exit(2);
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function registerNodes(url, token, count) {
  const request = createClient(url, { maxSockets: 16 });
  const pks = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const body = JSON.stringify({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, index: 0, cpu_mem: 1 << 30 });
      const res = await request('POST', '/v1/nodes/create', { headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
      if (res.status !== 201) throw new Error(`node create: ${res.status} ${res.body}`);
      pks[i] = JSON.parse(res.body).pk;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  request.destroy();
  return pks;
}

function startWorkers(config, nodePks) {
  const workers = [];
  for (let w = 0; w * PER_WORKER < nodePks.length; w++) {
    const child = track(
      fork(new URL('./lib/scale-worker.mjs', import.meta.url), [
        JSON.stringify({ ...config, nodePks: nodePks.slice(w * PER_WORKER, (w + 1) * PER_WORKER), localAddress: `127.0.0.${2 + w}` }),
      ]),
    );
    workers.push(child);
  }
  return workers;
}

/** Ask every worker for its counts, and sum them. */
async function report(workers) {
  const reports = await Promise.all(
    workers.map(
      (child) =>
        new Promise((resolve) => {
          const onMessage = (m) => {
            if (m.type !== 'report') return;
            child.off('message', onMessage);
            resolve(m);
          };
          child.on('message', onMessage);
          child.send({ type: 'report' });
        }),
    ),
  );
  const counts = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.counts)) counts[k] = (counts[k] ?? 0) + v;
  return {
    counts,
    errorSamples: reports.flatMap((r) => r.errorSamples),
    cpuSeconds: reports.reduce((s, r) => s + r.cpuSeconds, 0),
    loopDelayP99Ms: Math.max(...reports.map((r) => r.loopDelayP99Ms)),
    loopDelayMaxMs: Math.max(...reports.map((r) => r.loopDelayMaxMs)),
  };
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

async function runSize(nodes) {
  const load0 = await loadAverage();
  const server = await startTrackedServe({
    // No cap per client address: the simulated nodes of one generator process share its address, where
    // real agents come from one address each (serve.max_connections_per_address is 256 by default).
    env: { UFDL_AGENT_SERVE_ACCESS_TOKEN_LIFETIME: '3600', UFDL_AGENT_SERVE_MAX_CONNECTIONS_PER_ADDRESS: '0' },
    nodeArgs: profileArgs(args.profile, `serve-${nodes}`),
  });
  const getToken = session(server.url);
  const token = await getToken();
  const templatePk = await importShellTemplate(server.url, token, 'bench-scale', 'true');
  const nodePks = await registerNodes(server.url, token, nodes);
  const idle = await procStats(server.child.pid);

  const acquired = new Map();
  // Connections arrive at RAMP_PER_SECOND in all, so the server's accept queue never overflows.
  const workerCount = Math.ceil(nodes / PER_WORKER);
  const workers = startWorkers({ url: server.url, token, waitSeconds: WAIT_S, rampPerSecond: RAMP_PER_SECOND / workerCount }, nodePks);
  for (const child of workers) {
    child.on('message', (m) => {
      if (m.type === 'acquired') acquired.set(m.pk, m);
    });
  }
  await Promise.all(workers.map((child) => new Promise((resolve) => child.on('message', (m) => m.type === 'ramped' && resolve()))));
  // A node is between two polls for a moment when its wait runs out; 99 % waiting is "all idle". A
  // refused poll ends the run at once, with the server's reason, rather than the wait in vain.
  await until(async () => {
    const { counts, errorSamples } = await report(workers);
    if (counts.errors > 0) throw new Error(`${counts.errors} requests failed while the nodes connected, e.g. ${errorSamples[0]}`);
    return (await metric(server.url, 'ufdl_server_list_waiting')) >= nodes * 0.99;
  }, 120_000, `${nodes} waiting polls`);
  await sleep(1000);
  const waitingAtStart = await metric(server.url, 'ufdl_server_list_waiting');
  const loaded = await procStats(server.child.pid);
  const kibPerNode = (loaded.rss - idle.rss) / 1024 / waitingAtStart;

  const before = await report(workers);
  const wakes0 = await metric(server.url, 'ufdl_server_list_wakeups_total');
  const serverCpu0 = loaded.cpuSeconds;
  const created = new Map();
  const t0 = Date.now();
  for (let i = 0; i < JOBS; i++) {
    const sentAt = performance.timeOrigin + performance.now();
    const job = await call(server.url, 'POST', `/v1/job-templates/${templatePk}/create-job`, {
      token: await getToken(),
      json: { input_values: {}, parameter_values: {}, description: 'scale' },
    });
    created.set(job.pk, sentAt);
    await sleep(INTERVAL_MS);
  }
  let dispatched = true;
  await until(() => [...created.keys()].every((pk) => acquired.has(pk)), 60_000, 'every job acquired').catch((err) => {
    dispatched = false;
    console.error(err.message);
  });
  // Let the winners' start and finish, and any late list answers, land before counting.
  await sleep(Math.max(500, INTERVAL_MS));
  const after = await report(workers);
  const wakes = (await metric(server.url, 'ufdl_server_list_wakeups_total')) - wakes0;
  const end = await procStats(server.child.pid);
  const seconds = (Date.now() - t0) / 1000;
  const load1 = await loadAverage();
  for (const child of workers) child.send({ type: 'stop' });
  await Promise.all(workers.map((child) => stopProcess(child, 5000)));
  await server.stop({ removeData: true });

  const delta = (k) => after.counts[k] - before.counts[k];
  const latencies = [...created].filter(([pk]) => acquired.has(pk)).map(([pk, sentAt]) => acquired.get(pk).at - sentAt).sort((a, b) => a - b);
  const winners = new Set([...acquired.values()].map((a) => a.node));
  return {
    nodes,
    load: `${load0} → ${load1}`,
    waitingAtStart,
    jobs: JOBS,
    dispatchedCount: latencies.length,
    dispatched,
    answersPerJob: delta('listAnswersWithJobs') / JOBS,
    emptyAnswersPerSecond: delta('listAnswersEmpty') / seconds,
    acquiresPerJob: delta('acquireAttempts') / JOBS,
    lostPerJob: delta('acquireLost') / JOBS,
    wakesPerJob: wakes / JOBS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    kibPerNode,
    serverRssMiB: loaded.rss / 2 ** 20,
    serverCpuPercent: ((end.cpuSeconds - serverCpu0) / seconds) * 100,
    generatorCpuPercent: ((after.cpuSeconds - before.cpuSeconds) / seconds) * 100,
    generatorLoopP99Ms: after.loopDelayP99Ms,
    workers: workers.length,
    errors: after.counts.errors,
    distinctWinners: winners.size,
    errorSamples: after.errorSamples,
  };
}

const results = [];
try {
  for (const nodes of SIZES) {
    console.log(`\n--- ${nodes} waiting nodes, ${JOBS} jobs ${INTERVAL_MS} ms apart (load ${await loadAverage()}) ---`);
    const r = await runSize(nodes);
    results.push(r);
    console.log(
      `dispatched ${r.dispatchedCount} of ${r.jobs} jobs; per job: ${r.answersPerJob.toFixed(2)} list answers, ${r.acquiresPerJob.toFixed(2)} acquire attempts ` +
        `(${r.lostPerJob.toFixed(2)} lost), ${r.wakesPerJob.toFixed(2)} wake-ups; dispatch p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; ` +
        `server ${r.kibPerNode.toFixed(1)} KiB per waiting node (RSS ${r.serverRssMiB.toFixed(0)} MiB with ${r.waitingAtStart} waiting), CPU ${r.serverCpuPercent.toFixed(0)} %; ` +
        `expired polls ${r.emptyAnswersPerSecond.toFixed(0)}/s; generator ${r.workers} processes, CPU ${r.generatorCpuPercent.toFixed(0)} %, event-loop delay p99 ${r.generatorLoopP99Ms.toFixed(1)} ms; errors ${r.errors}`,
    );
    if (r.errorSamples.length) console.log('errors:', r.errorSamples);
  }
} finally {
  await cleanup();
}

for (const r of results) {
  const met =
    r.dispatched &&
    r.errors === 0 &&
    r.answersPerJob <= GOALS.answersPerJob &&
    r.acquiresPerJob <= GOALS.acquiresPerJob &&
    r.kibPerNode < GOALS.kibPerNode &&
    (r.nodes < 10_000 || (r.p50 < GOALS.p50Ms && r.p99 < GOALS.p99Ms));
  if (!RECORD) continue;
  await recordResult(
    'Scale (idle waiting nodes)',
    ['date', 'machine', 'load avg before → after', 'waiting nodes', 'jobs (ms apart)', 'list answers / job', 'acquire attempts / job (lost)', 'dispatch p50 / p99 / max ms', 'server KiB / waiting node', 'server CPU %', 'expired polls / s', 'generator processes, CPU %, loop p99 ms', 'errors', 'met'],
    [
      today(),
      machineLabel(),
      r.load,
      r.waitingAtStart,
      `${r.jobs} (${INTERVAL_MS})`,
      r.answersPerJob.toFixed(2),
      `${r.acquiresPerJob.toFixed(2)} (${r.lostPerJob.toFixed(2)})`,
      `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} / ${r.max.toFixed(1)}`,
      r.kibPerNode.toFixed(1),
      r.serverCpuPercent.toFixed(0),
      r.emptyAnswersPerSecond.toFixed(0),
      `${r.workers}, ${r.generatorCpuPercent.toFixed(0)}, ${r.generatorLoopP99Ms.toFixed(1)}`,
      r.errors,
      met ? 'yes' : 'no',
    ],
  );
}
// The bounded form fails only when a job was not dispatched or a request failed.
process.exitCode = results.every((r) => r.dispatched && r.errors === 0) ? 0 : 1;
