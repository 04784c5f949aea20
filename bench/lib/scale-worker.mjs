// Load-generator process of the scale benchmark: simulates `nodePks.length` idle agents, each with its
// own keep-alive connection (as real agents have), long-polling `POST /v1/jobs/list` with the agent's
// poll filter and `X-UFDL-Wait`. A node whose answer lists jobs tries to acquire them in order, as the
// agent does; on success it starts and finishes the job and polls again. Counts list answers and
// acquire attempts, reports each acquire to the parent at once (for dispatch latency), and its own
// CPU time and event-loop delay (to show it is not the limit).
//
// Every connection binds to `localAddress` (a loopback address of its own per worker process), so
// the ephemeral ports of one source address (net.ipv4.ip_local_port_range, ~28,000) are not shared.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pollFilter } from '../../dist/protocol/filter.js';
import { createClient } from './http-client.mjs';

const config = JSON.parse(process.argv[2]);
const { url, nodePks, waitSeconds, localAddress, rampPerSecond } = config;
let token = config.token;

// What the agent sends (src/agent/agent-loop.ts): its poll filter, and the head of the queue only.
const POLL_FILTER = JSON.stringify(pollFilter());
const POLL_LIMIT = '32';

const counts = { listAnswersWithJobs: 0, listAnswersEmpty: 0, acquireAttempts: 0, acquireWon: 0, acquireLost: 0, errors: 0 };
const errorSamples = [];
let stopping = false;
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

const now = () => performance.timeOrigin + performance.now();

function error(what, detail) {
  counts.errors++;
  if (errorSamples.length < 5) errorSamples.push(`${what}: ${detail}`.slice(0, 300));
}

async function simulateNode(nodePk, firstWaitSeconds) {
  // A connection of its own, as every agent has.
  const http = createClient(url, { maxSockets: 1, localAddress });
  const request = (method, path, { headers = {}, body } = {}) =>
    http(method, path, { headers: { authorization: `Bearer ${token}`, ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body });
  const asNode = { 'node-id': String(nodePk) };
  let wait = firstWaitSeconds;
  while (!stopping) {
    let jobs;
    try {
      const res = await request('POST', '/v1/jobs/list', { headers: { ...asNode, 'x-ufdl-wait': String(wait), 'x-ufdl-limit': POLL_LIMIT }, body: POLL_FILTER });
      if (res.status !== 200) throw new Error(`${res.status} ${res.body}`);
      jobs = JSON.parse(res.body);
    } catch (err) {
      if (stopping) break;
      error('list', err.message);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    // Later waits are the agent's; the first was shortened at random to spread the nodes' expiries.
    wait = waitSeconds;
    if (jobs.length === 0) {
      counts.listAnswersEmpty++;
      continue;
    }
    counts.listAnswersWithJobs++;
    for (const job of jobs) {
      counts.acquireAttempts++;
      const res = await request('GET', `/v1/jobs/${job.pk}/acquire`, { headers: asNode }).catch((err) => ({ status: 0, body: err.message }));
      if (res.status === 406) {
        counts.acquireLost++;
        continue;
      }
      if (res.status !== 200) {
        error('acquire', `${res.status} ${res.body}`);
        continue;
      }
      counts.acquireWon++;
      process.send({ type: 'acquired', pk: job.pk, node: nodePk, at: now() });
      const start = await request('POST', `/v1/jobs/${job.pk}/start`, { headers: asNode, body: '{}' }).catch((err) => ({ status: 0, body: err.message }));
      const finish = await request('POST', `/v1/jobs/${job.pk}/finish`, { headers: asNode, body: '{"success":true}' }).catch((err) => ({ status: 0, body: err.message }));
      if (start.status !== 200 || finish.status !== 200) error('start/finish', `${start.status} ${finish.status} ${start.body} ${finish.body}`);
      break;
    }
  }
  http.destroy();
}

const cpu0 = process.cpuUsage();
const running = [];
// Connect at a bounded rate: a burst of thousands of connections overflows the listen backlog.
const batch = Math.max(1, Math.round(rampPerSecond / 20));
for (let i = 0; i < nodePks.length; i += batch) {
  for (const pk of nodePks.slice(i, i + batch)) running.push(simulateNode(pk, 1 + Math.floor(Math.random() * waitSeconds)));
  await new Promise((r) => setTimeout(r, 50));
}
process.send({ type: 'ramped' });

process.on('message', async (message) => {
  if (message.type === 'token') token = message.token;
  if (message.type === 'report') {
    const cpu = process.cpuUsage(cpu0);
    process.send({
      type: 'report',
      counts,
      errorSamples,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    });
  }
  if (message.type === 'stop') {
    stopping = true;
    // Waiting polls are cut off rather than waited for.
    process.exit(0);
  }
});
