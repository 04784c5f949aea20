// Server throughput (docs/BENCHMARKS.md, "Goals"): full job lifecycles per second with 50 concurrent simulated nodes
// against `ufdl-agent serve`, and the same request mix against a bare node:http server answering a
// small JSON body. Goal: ours ≥ half of the bare server's rate, and no error.
//
//   node bench/lifecycle.bench.mjs [--nodes 50] [--seconds 20] [--workers 2] [--profile DIR]
import { fork } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { call, login, procStats, startServe } from './lib/processes.mjs';

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    workers: { type: 'string', default: '2' },
    // A CPU profile of the server (node --cpu-prof) into this directory; see bench/lib/profile-summary.mjs.
    profile: { type: 'string' },
  },
});
const NODES = Number(args.nodes);
const DURATION_MS = Number(args.seconds) * 1000;
const WORKERS = Number(args.workers);
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

function runWorkers(config, nodePks) {
  const perWorker = Array.from({ length: WORKERS }, (_, w) => nodePks.filter((_, i) => i % WORKERS === w));
  return Promise.all(
    perWorker.map(
      (pks) =>
        new Promise((resolve, reject) => {
          const child = fork(new URL('./lib/lifecycle-worker.mjs', import.meta.url), [JSON.stringify({ ...config, nodePks: pks })]);
          child.once('message', resolve);
          child.once('error', reject);
          child.once('exit', (code) => code !== 0 && reject(new Error(`worker exited ${code}`)));
        }),
    ),
  );
}

function merge(results) {
  const latencies = {};
  for (const r of results) for (const [k, v] of Object.entries(r.latencies)) (latencies[k] ??= []).push(...v);
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
const server = await startServe({ nodeArgs: args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [] });
let bare;
process.on('exit', () => {
  server.child.kill('SIGKILL');
  bare?.kill('SIGKILL');
  rmSync(server.dataDir, { recursive: true, force: true });
});
// Ctrl-C or run-all's time limit: leave through 'exit' so the servers are stopped.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));
const token = await login(server.url);
const template = await call(server.url, 'POST', '/v1/job-templates/import', { token, json: TEMPLATE });
const nodePks = [];
for (let i = 0; i < NODES; i++) {
  const node = await call(server.url, 'POST', '/v1/nodes/create', { token, json: { ip: '127.0.0.1', index: i, cpu_mem: 1 << 30 } });
  nodePks.push(node.pk);
}
// Tokens live 5 minutes by default; the run is shorter.
const serverCpu0 = (await procStats(server.child.pid)).cpuSeconds;
const ours = merge(await runWorkers({ url: server.url, token, templatePk: template.pk, durationMs: DURATION_MS, bare: false }, nodePks));
const serverStats = await procStats(server.child.pid);
await server.stop();

// --- baseline ---------------------------------------------------------------------------------
bare = fork(new URL('./lib/bare-server.mjs', import.meta.url));
const { port } = await new Promise((r) => bare.once('message', r));
const bareCpu0 = (await procStats(bare.pid)).cpuSeconds;
const baseline = merge(await runWorkers({ url: `http://127.0.0.1:${port}`, token: 'x', templatePk: 1, durationMs: DURATION_MS, bare: true }, nodePks));
const bareStats = await procStats(bare.pid);
bare.send('stop');

// --- report -----------------------------------------------------------------------------------
const oursRate = ours.lifecycles / (ours.elapsedMs / 1000);
const bareRate = baseline.lifecycles / (baseline.elapsedMs / 1000);
// CPU per request tells CPU cost from waiting (fsync) when the rates alone are noisy.
const requests = (r) => Object.values(r.latencies).reduce((n, v) => n + v.length, 0);
const oursCpuMs = ((serverStats.cpuSeconds - serverCpu0) * 1000) / requests(ours);
const bareCpuMs = ((bareStats.cpuSeconds - bareCpu0) * 1000) / requests(baseline);
const ratio = oursRate / bareRate;
console.log(`\nlifecycle benchmark — ${NODES} nodes, ${DURATION_MS / 1000} s, ${WORKERS} generator processes — ${machineLabel()} — load ${load0} → ${loadAvg()}`);
console.log('call          p50 ms   p99 ms   count');
for (const [name, v] of Object.entries(ours.latencies)) {
  console.log(`${name.padEnd(12)} ${percentile(v, 50).toFixed(2).padStart(7)} ${percentile(v, 99).toFixed(2).padStart(8)} ${String(v.length).padStart(7)}`);
}
console.log(`ufdl server: ${oursRate.toFixed(1)} lifecycles/s (${(oursRate * CALLS_PER_LIFECYCLE).toFixed(0)} req/s), errors ${ours.errors}, server CPU ${(serverStats.cpuSeconds - serverCpu0).toFixed(1)} s, peak RSS ${(serverStats.peakRss / 2 ** 20).toFixed(0)} MiB`);
console.log(`bare node:http: ${bareRate.toFixed(1)} lifecycles/s (${(bareRate * CALLS_PER_LIFECYCLE).toFixed(0)} req/s), errors ${baseline.errors}, server CPU ${(bareStats.cpuSeconds - bareCpu0).toFixed(1)} s`);
console.log(`server CPU per request: ${oursCpuMs.toFixed(3)} ms ours, ${bareCpuMs.toFixed(3)} ms bare`);
console.log(`load generator CPU: ${ours.generatorCpuSeconds.toFixed(1)} s over ${(ours.elapsedMs / 1000).toFixed(1)} s (ours), ${baseline.generatorCpuSeconds.toFixed(1)} s (baseline)`);
console.log(`ratio ours / bare: ${ratio.toFixed(2)} (goal ≥ 0.50) ${ratio >= 0.5 && ours.errors === 0 ? 'MET' : 'NOT MET'}`);
if (ours.errorSamples.length) console.log('errors:', ours.errorSamples);

await recordResult(
  'Server throughput (lifecycle)',
  ['date', 'machine', 'load avg before → after', 'nodes', 'seconds', 'ours lifecycles/s', 'bare lifecycles/s', 'ratio (goal ≥ 0.5)', 'errors', 'p50/p99 progress ms', 'server CPU ms/request ours / bare', 'generator CPU s'],
  [
    today(),
    machineLabel(),
    `${load0} → ${loadAvg()}`,
    NODES,
    DURATION_MS / 1000,
    oursRate.toFixed(1),
    bareRate.toFixed(1),
    ratio.toFixed(2),
    ours.errors,
    `${percentile(ours.latencies.progress ?? [], 50).toFixed(1)}/${percentile(ours.latencies.progress ?? [], 99).toFixed(1)}`,
    `${oursCpuMs.toFixed(3)} / ${bareCpuMs.toFixed(3)}`,
    `${ours.generatorCpuSeconds.toFixed(1)} / ${baseline.generatorCpuSeconds.toFixed(1)}`,
  ],
);
