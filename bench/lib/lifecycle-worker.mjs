// Load-generator process: drives `nodes` simulated nodes, each running full job lifecycles in a loop
// (create-job, acquire, start, 10 progress, one 1 KiB output, finish) until `durationMs` passes, or
// until each has run `lifecyclesPerNode` (when given).
// Reports lifecycles, per-call latencies, errors and its own CPU time to the parent over IPC.
// With several replicas (`urls`), node i talks to `urls[nodeReplicas[i]]` for all its calls, as an
// agent stays on one replica while it answers.
import { createClient } from './http-client.mjs';

const { url, urls = [url], nodeReplicas = [], token, templatePk, nodePks, durationMs, bare, lifecyclesPerNode = Infinity } = JSON.parse(process.argv[2]);
const clients = urls.map((u) => createClient(u, { maxSockets: nodePks.length * 2 }));
const OUTPUT = 'x'.repeat(1024);
const latencies = {};
let lifecycles = 0;
let errors = 0;
const errorSamples = [];

async function timed(request, name, method, path, opts, expected = 200) {
  const t0 = performance.now();
  const res = await request(method, path, opts);
  const ms = performance.now() - t0;
  (latencies[name] ??= []).push(ms);
  if (res.status !== expected) {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(`${name}: ${res.status} ${res.body.slice(0, 200)}`);
    throw new Error('unexpected status');
  }
  return res;
}

async function node(nodePk, request, deadline) {
  const auth = { authorization: `Bearer ${token}` };
  const asNode = { ...auth, 'node-id': String(nodePk) };
  const json = { 'content-type': 'application/json' };
  for (let done = 0; performance.now() < deadline && done < lifecyclesPerNode; done++) {
    try {
      const created = await timed(request, 'create-job', 'POST', `/v1/job-templates/${templatePk}/create-job`, {
        headers: { ...auth, ...json },
        body: JSON.stringify({ input_values: {}, parameter_values: {}, description: 'bench' }),
      });
      const pk = bare ? 1 : JSON.parse(created.body).pk;
      await timed(request, 'acquire', 'GET', `/v1/jobs/${pk}/acquire`, { headers: asNode });
      await timed(request, 'start', 'POST', `/v1/jobs/${pk}/start`, { headers: { ...asNode, ...json }, body: '{"send_notification":"email"}' });
      for (let i = 1; i <= 10; i++) {
        await timed(request, 'progress', 'POST', `/v1/jobs/${pk}/progress/${(i / 10).toFixed(1)}`, {
          headers: { ...asNode, ...json },
          body: JSON.stringify({ step: i }),
        });
      }
      await timed(request, 'output', 'POST', `/v1/jobs/${pk}/outputs/result/BLOB`, {
        headers: { ...asNode, 'content-type': 'application/data', 'content-disposition': 'attachment; filename=result' },
        body: OUTPUT,
      });
      await timed(request, 'finish', 'POST', `/v1/jobs/${pk}/finish`, {
        headers: { ...asNode, ...json },
        body: '{"success":true,"send_notification":"email"}',
      });
      lifecycles++;
    } catch {
      // counted in `errors`; continue with a new job
    }
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(nodePks.map((pk, i) => node(pk, clients[nodeReplicas[i] ?? 0], t0 + durationMs)));
for (const client of clients) client.destroy();
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.send({ lifecycles, errors, errorSamples, elapsedMs, cpuSeconds: (cpu.user + cpu.system) / 1e6, latencies });
