// Wait filters: what one hostile user's waiting list requests, each with a filter of its own, cost
// every job that becomes acquirable — and so everyone's dispatch. The server checks each acquirable
// job against the waiting filters on its main thread (src/server/wake-up/wake-hub.ts); before the
// filters were grouped by base and bounded per user, that was one query per distinct filter.
//
// Per kind and size F: one user holds F waiting `POST /v1/jobs/list` requests (X-UFDL-Wait: 60), each
// with a distinct filter no job matches, sent before anyone else's; then, one at a time, a node of
// another account waits with the poll filter, a job is created, and the node's answer is timed
// (create-job sent → the waiting poll answered) before it acquires the job. Kinds:
//
//   bases   F distinct small filters (`description = "hostile i"`)
//   skips   the poll filter less the created jobs' pks and one pk of its own: F filters, one base
//   terms   F distinct filters of 500 expressions (the most a filter may have)
//   search  F distinct 10,000-character substring searches, the jobs with 100 KB descriptions
//
// Reported per job: the server main thread's CPU (the whole job: create-job, two list answers,
// acquire, and the wake-up's checks), the queries the wake-up hub ran (`ufdl_server_list_wait_checks_total`;
// "n/a" on a build without it), and the dispatch latency. The hostile requests are sent once: one
// answered at once (declined by the allowance) is not sent again, since a client that loops on
// answers costs what plain list requests cost, with or without waiting.
//
//   node bench/wait-filters.bench.mjs [--kinds bases,skips,terms,search] [--filters 1,100,1000]
//                                     [--search-filters 1,10,100] [--jobs 40] [--label TEXT]
//
// UFDL_BENCH_CLI=<other checkout>/dist/cli/main.js runs the same scenario against another build
// (e.g. the one before this change), --label names it in the recorded row.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { pollFilter } from '../dist/protocol/filter.js';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { call, login, mainThreadCpuSeconds } from './lib/processes.mjs';
import { cleanup, importShellTemplate, loadAverage, positive, sleep, startTrackedServe } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'bases,skips,terms,search' },
    filters: { type: 'string', default: '1,100,1000' },
    'search-filters': { type: 'string', default: '1,10,100' },
    jobs: { type: 'string', default: '40' },
    label: { type: 'string', default: 'this build' },
  },
});
const KINDS = args.kinds.split(',').map((k) => k.trim());
const sizes = (list) => list.split(',').map((n) => positive('filters', n.trim()));
const JOBS = positive('jobs', args.jobs);
const SEARCH_CHARS = 10_000;
const SEARCH_DESCRIPTION_BYTES = 100_000;
const MALLORY = { username: 'mallory', password: 'bench-mallory-password' };

const POLL = pollFilter();

/** The hostile user's i-th filter of `kind`: distinct from the others, and never matching a job of this run. */
function hostileFilter(kind, i) {
  if (kind === 'bases') return { expressions: [{ type: 'exact', field: 'description', value: `hostile ${i}` }] };
  if (kind === 'skips') {
    // The jobs of this run are 1..JOBS (a fresh database): skip them all, and a pk of its own.
    const pks = [...Array.from({ length: JOBS + 5 }, (_, j) => j + 1), 1_000_000 + i];
    return { ...POLL, expressions: [...POLL.expressions, ...pks.map((pk) => ({ type: 'exact', field: 'pk', value: pk, invert: true }))] };
  }
  if (kind === 'terms') {
    // 499 comparisons that each run (none is equal, so the NOT holds), then one that fails.
    const others = Array.from({ length: 499 }, (_, j) => ({ type: 'exact', field: 'description', value: `hostile ${i} other ${j}` }));
    return { expressions: [{ type: 'or', invert: true, sub_expressions: others }, { type: 'exact', field: 'description', value: `hostile ${i}` }] };
  }
  // A search that fails only at its last character, in text of the same letter: the costliest kind.
  const needle = `${'a'.repeat(SEARCH_CHARS - 6)}${String(i).padStart(6, '0')}`;
  return { expressions: [{ type: 'contains', field: 'description', sub_string: needle }] };
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      found = true;
    }
  }
  return found ? sum : NaN;
}

/** A waiting list request on its own keep-alive connection; resolves with how long it was held. */
function waitingList(agent, url, token, filter, nodeId) {
  const body = JSON.stringify(filter);
  const target = new URL('/v1/jobs/list', url);
  const sentAt = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-ufdl-wait': '60',
          ...(nodeId === undefined ? {} : { 'node-id': String(nodeId) }),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`list → ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve({ at: performance.now(), heldMs: performance.now() - sentAt, jobs: JSON.parse(text), declined: res.headers['x-ufdl-wait-declined'] });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runOne(kind, filters) {
  const load0 = await loadAverage();
  const server = await startTrackedServe({
    // F hostile connections from one address, beyond the per-address cap's default of 256.
    env: { UFDL_AGENT_SERVE_ACCESS_TOKEN_LIFETIME: '3600', UFDL_AGENT_SERVE_MAX_CONNECTIONS_PER_ADDRESS: '0' },
  });
  const { url } = server;
  const admin = await login(url);
  await call(url, 'POST', '/v1/users/create', { token: admin, json: { ...MALLORY, email: 'mallory@example.org' } });
  const mallory = await login(url, MALLORY);
  const template = await importShellTemplate(url, admin, 'bench-wait-filters', 'true');
  const nodes = [];
  for (let i = 0; i < JOBS; i++) {
    const node = await call(url, 'POST', '/v1/nodes/create', { token: admin, json: { ip: `10.1.0.${i + 1}`, index: 0, cpu_mem: 1 << 30 } });
    nodes.push(node.pk);
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const hostile = Array.from({ length: filters }, (_, i) => waitingList(agent, url, mallory, hostileFilter(kind, i)));
  let answeredAtOnce = 0;
  for (const h of hostile) void h.then(() => answeredAtOnce++, () => {});
  // Every hostile request has reached the server: held, or answered.
  const deadline = Date.now() + 60_000;
  while ((await metric(url, 'ufdl_server_list_waiting')) + answeredAtOnce < filters) {
    if (Date.now() > deadline) throw new Error(`the ${filters} hostile requests did not all arrive`);
    await sleep(100);
  }
  await sleep(500);
  const held = await metric(url, 'ufdl_server_list_waiting');

  const description = kind === 'search' ? 'a'.repeat(SEARCH_DESCRIPTION_BYTES) : 'bench';
  const latencies = [];
  const checks0 = await metric(url, 'ufdl_server_list_wait_checks_total');
  // Over the whole loop: /proc counts CPU in 10-ms ticks, too coarse for one job; the server does
  // nothing in the pauses (its held requests cost no CPU while they wait).
  const cpu0 = await mainThreadCpuSeconds(server.child.pid);
  for (let i = 0; i < JOBS; i++) {
    const poll = waitingList(agent, url, admin, POLL, nodes[i]);
    // Queued behind the hostile ones (a poll held this long has been queued).
    await sleep(150);
    const sentAt = performance.now();
    const job = await call(url, 'POST', `/v1/job-templates/${template}/create-job`, { token: admin, json: { input_values: {}, parameter_values: {}, description } });
    const answer = await poll;
    if (!answer.jobs.some((j) => j.pk === job.pk)) throw new Error(`the poll was answered without job ${job.pk}`);
    latencies.push(answer.at - sentAt);
    await call(url, 'GET', `/v1/jobs/${job.pk}/acquire`, { token: admin, nodeId: nodes[i] });
  }
  const cpuSeconds = (await mainThreadCpuSeconds(server.child.pid)) - cpu0;
  const checks = (await metric(url, 'ufdl_server_list_wait_checks_total')) - checks0;
  const load1 = await loadAverage();
  agent.destroy();
  await server.stop({ removeData: true });
  latencies.sort((a, b) => a - b);
  return {
    kind,
    filters,
    held,
    answeredAtOnce,
    load: `${load0} → ${load1}`,
    cpuMsPerJob: (cpuSeconds / JOBS) * 1000,
    checksPerJob: checks / JOBS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
  };
}

const results = [];
try {
  for (const kind of KINDS) {
    if (!['bases', 'skips', 'terms', 'search'].includes(kind)) throw new Error(`--kinds: unknown kind '${kind}'`);
    for (const filters of sizes(kind === 'search' ? args['search-filters'] : args.filters)) {
      console.log(`\n--- ${args.label}: ${kind}, ${filters} hostile filters, ${JOBS} jobs (load ${await loadAverage()}) ---`);
      const r = await runOne(kind, filters);
      results.push(r);
      const checks = Number.isNaN(r.checksPerJob) ? 'n/a' : r.checksPerJob.toFixed(1);
      console.log(
        `held ${r.held}, answered at once ${r.answeredAtOnce}; per job: server main thread ${r.cpuMsPerJob.toFixed(1)} ms CPU, ` +
          `${checks} wake-up queries; dispatch p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; load ${r.load}`,
      );
    }
  }
} finally {
  await cleanup();
}

for (const r of results) {
  await recordResult(
    'Wait filters (one user holding F distinct waiting filters)',
    ['date', 'machine', 'build', 'load avg before → after', 'kind', 'hostile filters F', 'held / answered at once', 'server main-thread CPU ms / job', 'wake-up queries / job', 'dispatch p50 / p99 / max ms'],
    [
      today(),
      machineLabel(),
      args.label,
      r.load,
      r.kind,
      r.filters,
      `${r.held} / ${r.answeredAtOnce}`,
      r.cpuMsPerJob.toFixed(1),
      Number.isNaN(r.checksPerJob) ? 'n/a' : r.checksPerJob.toFixed(1),
      `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} / ${r.max.toFixed(1)}`,
    ],
  );
}
