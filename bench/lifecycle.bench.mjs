// Server throughput (docs/BENCHMARKS.md, "Goals"): full job lifecycles per second with 50 concurrent simulated nodes
// against `ufdl-agent serve`, and the same request mix against a bare node:http server answering a
// small JSON body. Goal: ours ≥ half of the bare server's rate, and no error.
//
// `--store postgres --replicas 3` (or `--store sqlite,postgres:1,postgres:3`, one after the other
// in one run, to compare at the same load) runs the server on a throw-away PostgreSQL cluster with
// that many `serve` processes on one database and one data directory; the simulated nodes are spread
// over the replicas (node i on replica i mod N). Those runs skip the bare server and record their rows
// under "PostgreSQL and replicas".
//
// `--floor` also runs the same mix against fastify with no work behind its routes
// (lib/fastify-floor.mjs), after the bare server, and records it under "Server throughput: the
// framework floor": what the framework costs above bare node:http, and ours above the framework.
//
// `--durable-floor` also runs it, in each round just before and just after bare, against
// lib/durable-floor.mjs: SQLite by hand, doing only the durable work of our server's design (the
// caller's rows, the transition, group commit, the job's JSON), on node:http and on fastify; rows
// under "Server throughput: the durable floor", each ratio the median of its own rounds. It says how
// close to bare a straightforward durable server of this design comes on the machine, and what our
// own layers cost above it.
//
// `--rounds N` (SQLite): N rounds of ours then bare (the floors around it), one after the other, each with a
// fresh server. This VM's speed drifts within minutes (bare alone ranged 900–1,517 lifecycles/s in
// one half hour), so one pair's ratio moves with it; the run reports every round's ratio and records
// the round whose ratio is the median, with that round's own figures (its sides ran next to each other).
//
//   node bench/lifecycle.bench.mjs [--nodes 50] [--seconds 20] [--workers 2] [--profile DIR]
//                                  [--store sqlite|postgres[:N],…] [--replicas N] [--floor] [--durable-floor]
//                                  [--rounds N]
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { call, login, mainThreadCpuSeconds, procStats, serverCounters } from './lib/processes.mjs';
import { onlySqlite, parseStores, recordStoreRow, startStore } from './lib/stores.mjs';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    // A CPU profile of the server (node --cpu-prof) into this directory; see bench/lib/profile-summary.mjs.
    profile: { type: 'string' },
    store: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '1' },
    floor: { type: 'boolean', default: false },
    'durable-floor': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
  },
});
const STORES = parseStores(args.store, args.replicas);
const NODES = Number(args.nodes);
const DURATION_MS = Number(args.seconds) * 1000;
const WORKERS = Number(args.workers);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a whole number ≥ 1, not ${args.rounds}`);
  process.exit(2);
}
const CALLS_PER_LIFECYCLE = 15;

const TEMPLATE = {
  name: 'bench-noop',
  version: 1,
  description: 'benchmark template',
  scope: 'public',
  licence: 'Apache 2.0',
  specific: {
    job_type: 'Run',
    executor_class: 'ufdl_agent.Shell',
    required_packages: '',
    parameters: { body: { types: ['str'], default: 'true', const: true, help: 'does nothing' } },
  },
};

/** Run the generator processes; node i of `nodePks` talks to replica i mod `config.urls.length`. */
function runWorkers(config, nodePks) {
  const replicas = config.urls?.length ?? 1;
  const indexes = Array.from({ length: WORKERS }, (_, w) => nodePks.map((_, i) => i).filter((i) => i % WORKERS === w));
  return Promise.all(
    indexes.map(
      (mine) =>
        new Promise((resolve, reject) => {
          const assigned = { nodePks: mine.map((i) => nodePks[i]), nodeReplicas: mine.map((i) => i % replicas) };
          const child = fork(new URL('./lib/lifecycle-worker.mjs', import.meta.url), [JSON.stringify({ ...config, ...assigned })]);
          child.once('message', resolve);
          child.once('error', reject);
          child.once('exit', (code) => code !== 0 && reject(new Error(`worker exited ${code}`)));
        }),
    ),
  );
}

function merge(results) {
  const latencies = {};
  // concat, not push(...v): a fast baseline gathers more latencies than a call may take arguments.
  for (const r of results) for (const [k, v] of Object.entries(r.latencies)) latencies[k] = (latencies[k] ?? []).concat(v);
  for (const v of Object.values(latencies)) v.sort((a, b) => a - b);
  return {
    lifecycles: results.reduce((s, r) => s + r.lifecycles, 0),
    errors: results.reduce((s, r) => s + r.errors, 0),
    errorSamples: results.flatMap((r) => r.errorSamples),
    elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
    generatorCpuSeconds: results.reduce((s, r) => s + r.cpuSeconds, 0),
    latencies,
  };
}

const loadAvg = () => loadavg().map((v) => v.toFixed(2)).join(' ');
const load0 = loadAvg();

// --- ours -------------------------------------------------------------------------------------
let running;
let bare;
process.on('exit', () => {
  for (const server of running?.servers ?? []) server.child.kill('SIGKILL');
  bare?.kill('SIGKILL');
});
// Ctrl-C or run-all's time limit: stop the servers (and a cluster) before leaving.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void running?.stop().finally(() => process.exit(130)));

/** One store spec under load: its lifecycles, the servers' CPU (the cluster's included) and peak RSS. */
async function runOurs(spec) {
  running = await startStore(spec, { nodeArgs: args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [] });
  const { urls } = running;
  try {
    const token = await login(urls[0]);
    const template = await call(urls[0], 'POST', '/v1/job-templates/import', { token, json: TEMPLATE });
    const nodePks = [];
    for (let i = 0; i < NODES; i++) {
      const node = await call(urls[0], 'POST', '/v1/nodes/create', { token, json: { ip: '127.0.0.1', index: i, cpu_mem: 1 << 30 } });
      nodePks.push(node.pk);
    }
    // Tokens live 5 minutes by default; the run is shorter.
    const cpu0 = await running.cpuSeconds();
    const counts0 = await running.databaseCounts();
    const loop0 = await eventLoopReading(running);
    const result = merge(await runWorkers({ url: urls[0], urls, token, templatePk: template.pk, durationMs: DURATION_MS, bare: false }, nodePks));
    const loop = eventLoopShares(loop0, await eventLoopReading(running));
    const cpuSeconds = (await running.cpuSeconds()) - cpu0;
    const counts1 = await running.databaseCounts();
    // Statements and transactions per lifecycle on PostgreSQL (each statement is one round trip).
    const perLifecycle = counts0 && {
      statements: (counts1.statements - counts0.statements) / result.lifecycles,
      transactions: (counts1.transactions - counts0.transactions) / result.lifecycles,
    };
    let peakRss = 0;
    for (const server of running.servers) peakRss = Math.max(peakRss, (await procStats(server.child.pid)).peakRss);
    return { ...result, rate: result.lifecycles / (result.elapsedMs / 1000), cpuSeconds, peakRss, nodePks, perLifecycle, loop };
  } finally {
    await running.stop();
    running = undefined;
  }
}

/**
 * Where one server's event loop went (single server only): its busy seconds and disk syncs (from
 * its /metrics), its main thread's CPU seconds, and the wall clock.
 */
async function eventLoopReading(store) {
  if (store.servers.length !== 1) return undefined;
  return { at: performance.now(), main: await mainThreadCpuSeconds(store.servers[0].child.pid), ...(await serverCounters(store.urls[0])) };
}

/**
 * Busy: the share of the wall clock the event loop ran (near 1: it is the limit). On a CPU: the share
 * its thread was running on a core; busy minus that is time it was ready but other threads and
 * processes (the generator's among them) had the cores.
 */
function eventLoopShares(a, b) {
  if (a === undefined || b === undefined) return undefined;
  const wall = (b.at - a.at) / 1000;
  const syncs = b.syncs - a.syncs;
  return {
    busy: (b.busySeconds - a.busySeconds) / wall,
    onCpu: (b.main - a.main) / wall,
    syncsPerSecond: syncs / wall,
    syncMs: syncs === 0 ? 0 : ((b.syncSeconds - a.syncSeconds) * 1000) / syncs,
    perSync: syncs === 0 ? 0 : (b.released - a.released) / syncs,
    batchesPerSync: syncs === 0 ? 0 : (b.batches - a.batches) / syncs,
  };
}

const describeLoop = (loop) =>
  loop === undefined
    ? 'n/a'
    : `busy ${(loop.busy * 100).toFixed(0)} %, on a CPU ${(loop.onCpu * 100).toFixed(0)} %; ${loop.syncsPerSecond.toFixed(0)} syncs/s of ${loop.syncMs.toFixed(1)} ms, ${loop.perSync.toFixed(0)} answers and events and ${loop.batchesPerSync.toFixed(1)} batch commits each`;

const requests = (r) => Object.values(r.latencies).reduce((n, v) => n + v.length, 0);
const allCalls = (r) => Object.values(r.latencies).flat().sort((a, b) => a - b);

function printLatencies(r) {
  console.log('call          p50 ms   p99 ms   count');
  for (const [name, v] of Object.entries(r.latencies)) {
    console.log(`${name.padEnd(12)} ${percentile(v, 50).toFixed(2).padStart(7)} ${percentile(v, 99).toFixed(2).padStart(8)} ${String(v.length).padStart(7)}`);
  }
}

if (!onlySqlite(STORES)) {
  const rows = [];
  for (const spec of STORES) {
    const before = loadAvg();
    console.log(`lifecycle: ${spec.label}, ${NODES} nodes, ${DURATION_MS / 1000} s …`);
    const r = await runOurs(spec);
    rows.push({ spec, r, load: `${before} → ${loadAvg()}` });
  }
  console.log(`\nlifecycle benchmark by store — ${NODES} nodes, ${DURATION_MS / 1000} s, ${WORKERS} generator processes — ${machineLabel()}`);
  for (const { spec, r, load } of rows) {
    const all = allCalls(r);
    console.log(`\n${spec.label} (load ${load}): ${r.rate.toFixed(1)} lifecycles/s, errors ${r.errors}, all calls p50/p99 ${percentile(all, 50).toFixed(1)}/${percentile(all, 99).toFixed(1)} ms, CPU of servers + cluster ${((r.cpuSeconds * 1000) / requests(r)).toFixed(3)} ms/request, peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MiB`);
    if (r.perLifecycle) console.log(`per lifecycle (${CALLS_PER_LIFECYCLE} requests): ${r.perLifecycle.statements.toFixed(1)} statements, ${r.perLifecycle.transactions.toFixed(1)} transactions`);
    printLatencies(r);
    if (r.errorSamples.length) console.log('errors:', r.errorSamples);
  }
  for (const { spec, r, load } of rows) {
    const all = allCalls(r);
    const progress = r.latencies.progress ?? [];
    await recordStoreRow({
      load,
      benchmark: `lifecycle (${NODES} nodes, ${DURATION_MS / 1000} s)`,
      spec,
      result: `${r.rate.toFixed(1)} lifecycles/s`,
      latency: `all calls ${percentile(all, 50).toFixed(1)} / ${percentile(all, 99).toFixed(1)} ms; progress ${percentile(progress, 50).toFixed(1)} / ${percentile(progress, 99).toFixed(1)} ms`,
      errors: r.errors,
      notes:
        `CPU of servers${spec.store === 'sqlite' ? '' : ' + cluster'} ${((r.cpuSeconds * 1000) / requests(r)).toFixed(3)} ms/request; generator ${r.generatorCpuSeconds.toFixed(1)} s` +
        (r.perLifecycle ? `; ${r.perLifecycle.statements.toFixed(0)} statements, ${r.perLifecycle.transactions.toFixed(0)} transactions per lifecycle` : ''),
    });
  }
  process.exit(rows.every(({ r }) => r.errors === 0) ? 0 : 1);
}

// --- baselines --------------------------------------------------------------------------------
/**
 * Run the generator against a baseline server script — one that answers any pk, or with `real` one
 * that keeps the jobs it is asked to create (the durable floor) — and return its rate and CPU.
 */
async function runBaseline(script, nodePks, { real = false, frontEnd, round } = {}) {
  // `real`: the baseline keeps jobs (the durable floor), so each lifecycle uses the pk it created.
  const dataDir = real ? await mkdtemp(join(tmpdir(), 'ufdl-bench-floor-')) : undefined;
  // With --profile the baselines are profiled too, for a side-by-side look at where the time goes.
  const profileName = `${script.replace(/^.*\//, '').replace(/\.mjs$/, '')}${frontEnd ? `-${frontEnd}` : ''}${ROUNDS > 1 ? `-round${round + 1}` : ''}.cpuprofile`;
  const execArgv = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile, '--cpu-prof-name', profileName] : [];
  bare = fork(new URL(script, import.meta.url), real ? [JSON.stringify({ dataDir, nodePks, frontEnd })] : [], { execArgv });
  const { port } = await new Promise((r) => bare.once('message', r));
  const cpu0 = (await procStats(bare.pid)).cpuSeconds;
  const result = merge(await runWorkers({ url: `http://127.0.0.1:${port}`, token: 'x', templatePk: 1, durationMs: DURATION_MS, bare: !real }, nodePks));
  const cpuSeconds = (await procStats(bare.pid)).cpuSeconds - cpu0;
  const exited = new Promise((r) => bare.once('exit', r));
  bare.send('stop');
  await exited;
  bare = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  return { ...result, rate: result.lifecycles / (result.elapsedMs / 1000), cpuMs: (cpuSeconds * 1000) / requests(result), cpuSeconds };
}
const rounds = [];
for (let i = 0; i < ROUNDS; i++) {
  // The durable floors on either side of bare, each next to the run it is compared with: this VM
  // drifts within minutes.
  const ours = await runOurs(STORES[0]);
  const durable = args['durable-floor'] ? await runBaseline('./lib/durable-floor.mjs', ours.nodePks, { real: true, frontEnd: 'http', round: i }) : undefined;
  const baseline = await runBaseline('./lib/bare-server.mjs', ours.nodePks, { round: i });
  const durableFastify = args['durable-floor'] ? await runBaseline('./lib/durable-floor.mjs', ours.nodePks, { real: true, frontEnd: 'fastify', round: i }) : undefined;
  const floor = args.floor ? await runBaseline('./lib/fastify-floor.mjs', ours.nodePks, { round: i }) : undefined;
  rounds.push({ ours, baseline, floor, durable, durableFastify, ratio: ours.rate / baseline.rate });
  if (ROUNDS > 1) {
    const durableNote = durable
      ? `, durable floor ${durable.rate.toFixed(1)} (${(durable.rate / baseline.rate).toFixed(2)} × bare), on fastify ${durableFastify.rate.toFixed(1)} (${(durableFastify.rate / baseline.rate).toFixed(2)} × bare)`
      : '';
    console.log(`round ${i + 1} of ${ROUNDS}: ours ${ours.rate.toFixed(1)}, bare ${baseline.rate.toFixed(1)} lifecycles/s, ratio ${(ours.rate / baseline.rate).toFixed(2)}${durableNote}`);
  }
}
// The median round by ratio (the lower middle one of an even count) stands for the run.
const byRatio = [...rounds].sort((a, b) => a.ratio - b.ratio);
const { ours, baseline, floor, durable, durableFastify } = byRatio[Math.floor((byRatio.length - 1) / 2)];
const roundRatios = rounds.map((r) => r.ratio.toFixed(2)).join(', ');
const roundErrors = rounds.reduce((n, r) => n + r.ours.errors, 0);

// --- report -----------------------------------------------------------------------------------
const oursRate = ours.rate;
const bareRate = baseline.rate;
// CPU per request tells CPU cost from waiting (fsync) when the rates alone are noisy.
const oursCpuMs = (ours.cpuSeconds * 1000) / requests(ours);
const bareCpuMs = baseline.cpuMs;
const ratio = oursRate / bareRate;
console.log(`\nlifecycle benchmark — ${NODES} nodes, ${DURATION_MS / 1000} s, ${WORKERS} generator processes — ${machineLabel()} — load ${load0} → ${loadAvg()}`);
printLatencies(ours);
console.log(`ufdl server: ${oursRate.toFixed(1)} lifecycles/s (${(oursRate * CALLS_PER_LIFECYCLE).toFixed(0)} req/s), errors ${ours.errors}, server CPU ${ours.cpuSeconds.toFixed(1)} s, peak RSS ${(ours.peakRss / 2 ** 20).toFixed(0)} MiB`);
console.log(`bare node:http: ${bareRate.toFixed(1)} lifecycles/s (${(bareRate * CALLS_PER_LIFECYCLE).toFixed(0)} req/s), errors ${baseline.errors}, server CPU ${baseline.cpuSeconds.toFixed(1)} s`);
if (floor) console.log(`fastify, no work: ${floor.rate.toFixed(1)} lifecycles/s (${(floor.rate * CALLS_PER_LIFECYCLE).toFixed(0)} req/s), errors ${floor.errors}, server CPU ${floor.cpuSeconds.toFixed(1)} s`);
console.log(`server CPU per request: ${oursCpuMs.toFixed(3)} ms ours, ${bareCpuMs.toFixed(3)} ms bare${floor ? `, ${floor.cpuMs.toFixed(3)} ms fastify with no work` : ''}`);
console.log(`ufdl server event loop: ${describeLoop(ours.loop)}`);
console.log(`load generator CPU: ${ours.generatorCpuSeconds.toFixed(1)} s over ${(ours.elapsedMs / 1000).toFixed(1)} s (ours), ${baseline.generatorCpuSeconds.toFixed(1)} s (baseline)`);
console.log(
  `ratio ours / bare: ${ratio.toFixed(2)}${ROUNDS > 1 ? ` (the median round; rounds: ${roundRatios}; errors in all rounds: ${roundErrors})` : ''} (goal ≥ 0.50) ${ratio >= 0.5 && roundErrors === 0 ? 'MET' : 'NOT MET'}`,
);
if (floor) console.log(`fastify with no work / bare: ${(floor.rate / bareRate).toFixed(2)}; ours / fastify with no work: ${(oursRate / floor.rate).toFixed(2)}`);
if (durable) {
  for (const [name, floorRun] of [['node:http', durable], ['fastify', durableFastify]]) {
    console.log(`durable floor on ${name} (our design's durable work by hand): ${floorRun.rate.toFixed(1)} lifecycles/s, errors ${floorRun.errors}, server CPU ${floorRun.cpuMs.toFixed(3)} ms/request`);
    if (floorRun.errorSamples.length) console.log(`durable floor on ${name}: errors`, floorRun.errorSamples);
  }
  console.log(`durable floor / bare: ${(durable.rate / bareRate).toFixed(2)} on node:http, ${(durableFastify.rate / bareRate).toFixed(2)} on fastify; ours / durable floor on fastify: ${(oursRate / durableFastify.rate).toFixed(2)}`);
}
if (ours.errorSamples.length) console.log('errors:', ours.errorSamples);

// With rounds, the row's figures are the median round's.
const secondsCell = ROUNDS > 1 ? `${ROUNDS} rounds × ${DURATION_MS / 1000}` : DURATION_MS / 1000;
await recordResult(
  'Server throughput (lifecycle)',
  ['date', 'machine', 'load avg before → after', 'nodes', 'seconds', 'ours lifecycles/s', 'bare lifecycles/s', 'ratio (goal ≥ 0.5)', 'errors', 'p50/p99 progress ms', 'server CPU ms/request ours / bare', 'generator CPU s', 'our event loop'],
  [
    today(),
    machineLabel(),
    `${load0} → ${loadAvg()}`,
    NODES,
    secondsCell,
    oursRate.toFixed(1),
    bareRate.toFixed(1),
    ROUNDS > 1 ? `${ratio.toFixed(2)} (median round of ${roundRatios})` : ratio.toFixed(2),
    roundErrors,
    `${percentile(ours.latencies.progress ?? [], 50).toFixed(1)}/${percentile(ours.latencies.progress ?? [], 99).toFixed(1)}`,
    `${oursCpuMs.toFixed(3)} / ${bareCpuMs.toFixed(3)}`,
    `${ours.generatorCpuSeconds.toFixed(1)} / ${baseline.generatorCpuSeconds.toFixed(1)}`,
    describeLoop(ours.loop),
  ],
);

/** A ratio's median over the rounds (the lower middle of an even count), with every round's. */
const perRound = (ratio) => {
  const values = rounds.map(ratio);
  const median = [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)].toFixed(2);
  return ROUNDS > 1 ? `${median} (rounds: ${values.map((v) => v.toFixed(2)).join(', ')})` : median;
};

if (durable) {
  await recordResult(
    'Server throughput: the durable floor',
    [
      'date',
      'machine',
      'load avg before → after',
      'nodes',
      'seconds',
      'ours / floor on fastify / floor on node:http / bare lifecycles/s',
      'floor on node:http / bare',
      'floor on fastify / bare',
      'ours / bare',
      'server CPU ms/request ours / floor on fastify / on node:http / bare',
      'errors ours / floors / bare',
    ],
    [
      today(),
      machineLabel(),
      `${load0} → ${loadAvg()}`,
      NODES,
      secondsCell,
      `${oursRate.toFixed(1)} / ${durableFastify.rate.toFixed(1)} / ${durable.rate.toFixed(1)} / ${bareRate.toFixed(1)}`,
      perRound((r) => r.durable.rate / r.baseline.rate),
      perRound((r) => r.durableFastify.rate / r.baseline.rate),
      perRound((r) => r.ours.rate / r.baseline.rate),
      `${oursCpuMs.toFixed(3)} / ${durableFastify.cpuMs.toFixed(3)} / ${durable.cpuMs.toFixed(3)} / ${bareCpuMs.toFixed(3)}`,
      `${ours.errors} / ${durableFastify.errors + durable.errors} / ${baseline.errors}`,
    ],
  );
}

if (floor) {
  await recordResult(
    'Server throughput: the framework floor',
    ['date', 'machine', 'load avg before → after', 'nodes', 'seconds', 'ours / fastify with no work / bare lifecycles/s', 'fastify / bare', 'ours / fastify', 'server CPU ms/request ours / fastify / bare', 'errors ours / fastify / bare'],
    [
      today(),
      machineLabel(),
      `${load0} → ${loadAvg()}`,
      NODES,
      secondsCell,
      `${oursRate.toFixed(1)} / ${floor.rate.toFixed(1)} / ${bareRate.toFixed(1)}`,
      (floor.rate / bareRate).toFixed(2),
      (oursRate / floor.rate).toFixed(2),
      `${oursCpuMs.toFixed(3)} / ${floor.cpuMs.toFixed(3)} / ${bareCpuMs.toFixed(3)}`,
      `${ours.errors} / ${floor.errors} / ${baseline.errors}`,
    ],
  );
}
