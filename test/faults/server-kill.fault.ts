/**
 * Scenario 2 (issue 5: "the server killed mid-load … no acknowledged transition lost"):
 * `ufdl-agent serve` SIGKILLed under lifecycle load and restarted on the same data directory and port,
 * several times; then every transition the server had acknowledged (a 200, or 201 for a node) must be
 * there.
 *
 * The load generator (in this process) drives simulated nodes through full job lifecycles, as the
 * lifecycle benchmark does: create-job, acquire, start, progress ×5, one or two outputs of random
 * bytes, finish (one in five with an error). It records every acknowledged step in memory; a step that
 * fails (the server is down, a connection is cut) abandons that job — whether it landed is unknown and
 * not checked. After the load stops the server is killed once more, restarted, and checked:
 *
 * - every acknowledged node and job exists; acquire → the job's node; start → start_time;
 * - progress → the job's progress_amount is at least the last acknowledged value (values only grow);
 * - output → listed once and downloads byte-identical; finish → end_time and the error reason sent;
 * - and, for every job, the phases are consistent (ended ⇒ started ⇒ acquired).
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { report } from './helpers/checks.js';
import { call, type JobJson, type ServerApi } from './helpers/http.js';
import { sleep } from './helpers/procs.js';
import { Rig, type ServerHandle } from './helpers/rig.js';
import { Random, scale, seed } from './helpers/scale.js';
import { shellTemplate } from '../helpers/templates.js';

const S = scale();

interface Acked {
  pk: number;
  node: number;
  acquired: boolean;
  started: boolean;
  progress: number | null;
  outputs: Map<string, string>;
  finished: { error: string | null } | null;
}

it(`the server SIGKILLed ${S.serverKill.kills} times under lifecycle load: every acknowledged transition survives`, async () => {
  const seedValue = seed();
  const rnd = new Random(seedValue);
  const rig = Rig.forTest('server-kill');
  let server = await rig.startServer();
  const api = rig.admin(server);
  const token = await api.token();
  // Never run: the load generator drives its jobs.
  const template = await api.importTemplate(shellTemplate('server-kill-noop', 'true'));

  const ackedNodes: number[] = [];
  for (let i = 0; i < S.serverKill.nodes; i++) {
    const res = await api.call('POST', '/v1/nodes/create', { json: { ip: '10.99.0.1', index: i, cpu_mem: 1 << 30 } });
    if (res.status !== 201 && res.status !== 200) throw new Error(`node create: ${res.status} ${res.text}`);
    ackedNodes.push((res.body as { pk: number }).pk);
  }

  const acked = new Map<number, Acked>();
  let stop = false;
  let lifecycles = 0;
  let abandoned = 0;
  let currentUrl = server.url;
  const stats = { calls: 0, acks: 0, failures: 0 };
  const failureKinds = new Map<string, number>();
  const fail = (kind: string) => failureKinds.set(kind, (failureKinds.get(kind) ?? 0) + 1);

  /** One call; true when acknowledged with `expect`. Network errors and other statuses are "not acknowledged". */
  const step = async (method: string, path: string, opts: Parameters<typeof call>[3], expectStatus = [200]): Promise<{ ok: boolean; body: any }> => {
    const name = path.replace(/progress\/[\d.]+/, 'progress').replace(/outputs\/.*/, 'output').replace(/\/\d+/g, '/N');
    stats.calls++;
    try {
      const res = await call(currentUrl, method, path, { ...opts, token, timeoutMs: 5_000 });
      if (expectStatus.includes(res.status)) {
        stats.acks++;
        return { ok: true, body: res.body };
      }
      // Anything else while the server was up is a finding of its own (no 500 on a valid lifecycle).
      if (res.status >= 500 && res.status !== 503) unexpected.push(`${method} ${path} → ${res.status} ${res.text.slice(0, 200)}`);
      fail(`${name} ${res.status}`);
    } catch (err) {
      // down, reset, timed out: not acknowledged
      const cause = (err as { cause?: { code?: string } }).cause;
      fail(`${name} ${cause?.code ?? (err as Error).name}`);
    }
    stats.failures++;
    return { ok: false, body: undefined };
  };
  const unexpected: string[] = [];

  const simulate = async (nodePk: number, r: Random) => {
    while (!stop) {
      const created = await step('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {}, parameter_values: {}, description: `load ${nodePk}` } });
      if (!created.ok) {
        abandoned++;
        await sleep(100);
        continue;
      }
      const pk = (created.body as { pk: number }).pk;
      const entry: Acked = { pk, node: nodePk, acquired: false, started: false, progress: null, outputs: new Map(), finished: null };
      acked.set(pk, entry);
      const done = await (async () => {
        if (!(await step('GET', `/v1/jobs/${pk}/acquire`, { nodeId: nodePk })).ok) return false;
        entry.acquired = true;
        if (!(await step('POST', `/v1/jobs/${pk}/start`, { nodeId: nodePk, json: { send_notification: 'email' } })).ok) return false;
        entry.started = true;
        for (let i = 1; i <= 5; i++) {
          const value = i / 5;
          if (!(await step('POST', `/v1/jobs/${pk}/progress/${value.toFixed(1)}`, { nodeId: nodePk, json: { step: i } })).ok) return false;
          entry.progress = value;
        }
        for (let o = 0; o < r.int(1, 2); o++) {
          const name = `out-${o}.bin`;
          const bytes = randomBytes(1024);
          const res = await step('POST', `/v1/jobs/${pk}/outputs/${name}/BLOB`, {
            nodeId: nodePk,
            body: bytes,
            headers: { 'content-type': 'application/data', 'content-disposition': `attachment; filename=${name}` },
          });
          if (!res.ok) return false;
          entry.outputs.set(name, sha(bytes));
        }
        const error = r.chance(0.2) ? `load error for job ${pk}` : null;
        const body = error === null ? { success: true, send_notification: 'email' } : { success: false, error, send_notification: 'email' };
        if (!(await step('POST', `/v1/jobs/${pk}/finish`, { nodeId: nodePk, json: body })).ok) return false;
        entry.finished = { error };
        return true;
      })();
      if (done) lifecycles++;
      else {
        abandoned++;
        // Like a real node: an interrupted job is finished with an error before the next one, or
        // this node's next start is refused (it still works this job). Until the server answers.
        if (entry.acquired) await cleanUp(entry, nodePk);
        await sleep(50);
      }
    }
  };

  const cleanUp = async (entry: Acked, nodePk: number) => {
    const error = `interrupted job ${entry.pk}`;
    for (let attempt = 0; attempt < 200; attempt++) {
      stats.calls++;
      try {
        const res = await call(currentUrl, 'POST', `/v1/jobs/${entry.pk}/finish`, { token, nodeId: nodePk, json: { success: false, error }, timeoutMs: 5_000 });
        if (res.status === 200) {
          stats.acks++;
          // Acknowledged: an error finish of a started job, or the silent clean-up of one not started.
          if (entry.started || res.body?.end_time) entry.finished = { error };
          return;
        }
        fail(`cleanup:${res.status}`);
        return; // a definite refusal: nothing to clean up (e.g. never started)
      } catch {
        fail('cleanup:down');
        await sleep(100);
      }
    }
  };

  const t0 = Date.now();
  const load = Promise.all(ackedNodes.map((pk, i) => simulate(pk, new Random(seedValue + i + 1))));
  const kills: string[] = [];
  try {
    for (let k = 1; k <= S.serverKill.kills; k++) {
      const [lo, hi] = S.serverKill.loadBeforeKillMs;
      await sleep(rnd.int(lo, hi));
      const before = stats.acks;
      await server.proc.kill('SIGKILL');
      await sleep(rnd.int(0, 500));
      server = await rig.startServer({ ...server.spec, logName: `server-${k}` });
      currentUrl = server.url;
      kills.push(`kill ${k} after ${before} acks`);
    }
    await sleep(S.serverKill.loadBeforeKillMs[0]);
  } finally {
    stop = true;
    await load;
  }
  // Everything acknowledged so far must survive one more SIGKILL.
  await server.proc.kill('SIGKILL');
  server = await rig.startServer({ ...server.spec, logName: 'server-final' });
  api.url = server.url;
  const elapsedS = (Date.now() - t0) / 1000;

  const problems = await verify(api, server, acked, ackedNodes);
  console.log(
    `[server-kill] seed ${seedValue}; ${kills.join(', ')}; ${elapsedS.toFixed(1)} s, ${stats.calls} calls, ${stats.acks} acknowledged, ${stats.failures} not; ${lifecycles} complete lifecycles, ${abandoned} abandoned (${[...failureKinds].map(([k, n]) => `${k} ×${n}`).join(', ')}); ${acked.size} jobs checked`,
  );
  expect(report('acknowledged transitions missing after restart', problems)).toBe('acknowledged transitions missing after restart: none');
  expect(report('5xx answers to valid lifecycle calls', unexpected)).toBe('5xx answers to valid lifecycle calls: none');
});

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function verify(api: ServerApi, server: ServerHandle, acked: Map<number, Acked>, nodes: number[]): Promise<string[]> {
  const problems: string[] = [];
  for (const pk of nodes) {
    const res = await api.call('GET', `/v1/nodes/${pk}`);
    if (res.status !== 200) problems.push(`node ${pk}: created (201) but GET answers ${res.status}`);
  }
  const all = new Map((await api.jobs()).map((j) => [j.pk, j]));
  for (const job of all.values()) problems.push(...consistency(job));
  for (const a of acked.values()) {
    const job = all.get(a.pk);
    if (job === undefined) {
      problems.push(`job ${a.pk}: created (200) but missing`);
      continue;
    }
    if (a.acquired && job.node !== a.node) problems.push(`job ${a.pk}: acquire by node ${a.node} acknowledged, node is ${job.node}`);
    if (a.started && job.start_time === null) problems.push(`job ${a.pk}: start acknowledged, start_time is null`);
    if (a.progress !== null) {
      const expressions = [
        {
          type: 'and',
          sub_expressions: [
            { type: 'exact', field: 'pk', value: a.pk },
            { type: 'compare', field: 'progress_amount', operator: '>=', value: a.progress },
          ],
        },
      ];
      const found = await api.ok<JobJson[]>('POST', '/v1/jobs/list', { json: { expressions } });
      if (found.length !== 1) problems.push(`job ${a.pk}: progress ${a.progress} acknowledged, the server has less`);
    }
    for (const [name, digest] of a.outputs) {
      const listed = job.outputs.filter((o) => o.name === name);
      if (listed.length !== 1) {
        problems.push(`job ${a.pk}: output ${name} acknowledged, listed ${listed.length} times`);
        continue;
      }
      const res = await fetch(`${server.url}/v1/jobs/${a.pk}/outputs/${name}/BLOB`, { headers: { authorization: `Bearer ${await api.token()}` } });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) problems.push(`job ${a.pk}: output ${name} acknowledged, download answers ${res.status}`);
      else if (sha(body) !== digest) problems.push(`job ${a.pk}: output ${name} acknowledged, downloaded bytes differ (${body.length} bytes)`);
    }
    if (a.finished !== null) {
      if (job.end_time === null) problems.push(`job ${a.pk}: finish acknowledged, end_time is null`);
      else if (job.error_reason !== a.finished.error) {
        problems.push(`job ${a.pk}: finish acknowledged with error ${JSON.stringify(a.finished.error)}, server has ${JSON.stringify(job.error_reason)}`);
      }
    }
  }
  return problems;
}

/** Phases that cannot happen whatever landed: ended ⇒ started ⇒ acquired. */
function consistency(job: JobJson): string[] {
  const problems: string[] = [];
  if (job.end_time !== null && job.start_time === null) problems.push(`job ${job.pk}: ended but never started`);
  if (job.start_time !== null && job.node === null) problems.push(`job ${job.pk}: started by no node`);
  return problems;
}
