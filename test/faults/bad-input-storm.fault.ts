/**
 * Scenario 5 (issue 5): a bad-input storm — random and malformed requests,
 * property-based with fast-check (helpers/storm.ts), at every route of `ufdl-agent serve` for a fixed
 * time, while two real agents work through a real queue.
 *
 * Property, for every request: no 5xx, no HTML, every 4xx a JSON `{"detail": …}`, an answer within
 * the timeout. A failing request is shrunk by fast-check to a small reproduction and recorded; the
 * storm goes on with a new seed until the time is up, and all findings are reported at the end.
 * Meanwhile `/livez` is polled; the server process must stay alive throughout.
 *
 * After the storm: the server still runs and answers; both agents still run; every real job finished
 * successfully with exactly its outputs, never twice at once; nothing is held; and no file appeared
 * in the scenario's directory outside the server's data directory and the agents' directories (the
 * data directory is nested three levels deep so that `../` tricks would land there).
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { checkFinishedJobs, checkNothingHeld, report, waitAllEnded } from './helpers/checks.js';
import { call } from './helpers/http.js';
import { sleep } from './helpers/procs.js';
import { Rig } from './helpers/rig.js';
import { concurrentRuns, runLogSummary } from './helpers/runlog.js';
import { Random, scale, seed } from './helpers/scale.js';
import { runTemplate } from '../helpers/templates.js';
import { describe as describeRequest, judge, mayHang, requestArb, signature, StormClient, type StormRequest, type StormWorld } from './helpers/storm.js';

const S = scale();

it(`a bad-input storm at every route for ${S.storm.durationMs / 1000} s while real agents work: no 500, no HTML, no crash, the real jobs unaffected`, async () => {
  const seedValue = seed();
  const rnd = new Random(seedValue);
  const rig = Rig.forTest('storm');
  const server = await rig.startServer({ dataDir: join(rig.dir, 'd1', 'd2', 'd3', 'server-data') });
  const api = rig.admin(server);
  const template = await api.importTemplate(rig.workloadTemplate('storm-real'));

  // The storm's own users and objects: it acts on these, or on nothing.
  await api.createUser('storm-staff', 'storm-staff-password', true);
  await api.createUser('storm-user', 'storm-user-password', false);
  const login = async (username: string, password: string) =>
    ((await call(server.url, 'POST', '/v1/auth/obtain', { json: { username, password } })).body as { access: string }).access;
  const staffToken = await login('storm-staff', 'storm-staff-password');
  const userToken = await login('storm-user', 'storm-user-password');
  const as = (token: string, method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(server.url, method, path, { ...opts, token });
  const stormTemplate = (
    await as(staffToken, 'POST', '/v1/job-templates/import', {
      // No agent runs this executor: the storm plays with the template and its jobs alone.
      json: runTemplate('storm-template', 'storm.NotAnExecutor', { body: { types: ['str'], default: 'x', const: true, help: 'never run' } }),
    })
  ).body.pk as number;
  const staffNode = (await as(staffToken, 'POST', '/v1/nodes/create', { json: { ip: '10.66.0.1', index: 0, cpu_mem: 1 << 30 } })).body.pk as number;
  const userNode = (await as(userToken, 'POST', '/v1/nodes/create', { json: { ip: '10.66.0.2', index: 0, cpu_mem: 1 << 30 } })).body.pk as number;
  const stormJobs: number[] = [];
  for (const token of [staffToken, staffToken, userToken, userToken]) {
    const res = await as(token, 'POST', `/v1/job-templates/${stormTemplate}/create-job`, { json: { input_values: {}, parameter_values: {}, description: 'storm' } });
    stormJobs.push(res.body.pk as number);
  }
  const must = <T extends { status: number; text: string }>(res: T, what: string): T => {
    if (res.status !== 200 && res.status !== 201) throw new Error(`storm setup: ${what}: ${res.status} ${res.text.slice(0, 300)}`);
    return res;
  };
  must(await as(staffToken, 'GET', `/v1/jobs/${stormJobs[0]}/acquire`, { nodeId: staffNode }), 'acquire');
  must(await as(staffToken, 'POST', `/v1/jobs/${stormJobs[0]}/start`, { nodeId: staffNode, json: { send_notification: 'email' } }), 'start');
  const uploaded = must(
    await as(staffToken, 'POST', `/v1/jobs/${stormJobs[0]}/outputs/storm.bin/BLOB`, {
      nodeId: staffNode,
      body: Buffer.from('storm output'),
      headers: { 'content-type': 'application/data', 'content-disposition': 'attachment; filename=storm.bin' },
    }),
    'output upload',
  );
  const hardware = ((await api.ok<{ pk: number }[]>('POST', '/v1/hardware/list', { json: {} })) ?? []).map((h) => h.pk);
  const world: StormWorld = {
    port: server.port,
    staffToken,
    userToken,
    own: { job: stormJobs, template: [stormTemplate], node: [staffNode, userNode], output: [uploaded.body?.pk].filter((x): x is number => typeof x === 'number'), hw: hardware },
    usernames: ['storm-staff', 'storm-user', 'storm-nobody'],
  };
  for (const [kind, pks] of Object.entries(world.own)) {
    if ((kind !== 'hw' && pks.length === 0) || pks.some((pk) => !Number.isInteger(pk))) throw new Error(`storm setup: own ${kind} objects ${JSON.stringify(pks)}`);
  }

  // The real work: a queue and two agents, as admin.
  const realPks: number[] = [];
  const addReal = async () => realPks.push(await api.createJob(template, { ticks: { value: rnd.int(1, 6), type: 'int' } }, 'real'));
  for (let i = 0; i < Math.ceil(S.storm.jobs / 2); i++) await addReal();
  const agents = await Promise.all([0, 1].map((i) => rig.startAgent({ name: `agent-${i}`, serverUrl: server.url, slots: 2, nodeIndex: i * 10 })));

  // The storm, the feeder of real jobs, and the liveness watch, for the same fixed time.
  const deadline = Date.now() + S.storm.durationMs;
  const client = new StormClient(server.port, S.storm.concurrency * 2);
  const findings = new Map<string, { example: string; routes: Set<string> }>();
  const statuses = new Map<string, number>();
  let requests = 0;
  let shrinks = 0;
  const liveness: string[] = [];
  const unanswered: StormRequest[] = [];
  const arb = requestArb(world);
  const storm = async (lane: number) => {
    for (let round = 0; Date.now() < deadline - 500; round++) {
      const runSeed = (seedValue + lane * 7919 + round * 104729) | 0;
      const details = await fc.check(
        fc.asyncProperty(arb, async (req: StormRequest) => {
          requests++;
          const answer = await client.send(req);
          const cls = answer.timedOut ? 'timeout' : answer.status === null ? 'no answer' : `${Math.floor(answer.status / 100)}xx`;
          statuses.set(cls, (statuses.get(cls) ?? 0) + 1);
          if (answer.timedOut && !mayHang(req) && unanswered.length < 20) unanswered.push(req);
          const problem = judge(req, answer);
          if (problem !== null) throw new Error(problem);
        }),
        { seed: runSeed, numRuns: 1_000_000, interruptAfterTimeLimit: Math.max(1, deadline - Date.now()), markInterruptAsFailure: false },
      );
      shrinks += details.numShrinks;
      if (details.failed && details.counterexample) {
        const req = details.counterexample[0];
        const problem = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
        const key = signature(problem);
        const finding = findings.get(key) ?? { example: `${problem.slice(0, 400)}\n      request (seed ${runSeed}, shrunk ${details.numShrinks}×): ${describeRequest(req)}`, routes: new Set<string>() };
        finding.routes.add(req.route);
        findings.set(key, finding);
      }
    }
  };
  const feeder = async () => {
    const rest = S.storm.jobs - realPks.length;
    for (let i = 0; i < rest && Date.now() < deadline; i++) {
      await sleep(S.storm.durationMs / (rest + 1));
      await addReal();
    }
  };
  // The server must stay alive and /livez must say so whenever it answers; slow answers (a busy
  // machine) are counted, not judged.
  let slowLivez = 0;
  const watch = async () => {
    while (Date.now() < deadline) {
      if (!server.proc.alive) {
        liveness.push(`the server process exited: ${JSON.stringify(server.proc.exit)}`);
        return;
      }
      const status = await call(server.url, 'GET', '/livez', { timeoutMs: 5_000 }).then(
        (r) => r.status,
        () => null,
      );
      if (status === null) slowLivez++;
      else if (status !== 200) liveness.push(`/livez answered ${status} at ${new Date().toISOString()}`);
      await sleep(1_000);
    }
  };
  try {
    await Promise.all([...Array.from({ length: S.storm.concurrency }, (_, lane) => storm(lane)), feeder(), watch()]);
  } finally {
    client.close();
  }
  while (realPks.length < S.storm.jobs) await addReal();

  // Requests that got no answer within 15 s during the storm (a busy machine, a slow disk under
  // synchronous SQLite) get one more chance, one at a time, with 30 s: no answer again is a finding.
  const replay = new StormClient(server.port, 1, 30_000);
  const hung: string[] = [];
  try {
    for (const req of unanswered) if ((await replay.send(req)).timedOut) hung.push(describeRequest(req));
  } finally {
    replay.close();
  }

  // The aftermath.
  const serverAlive = server.proc.alive;
  const livez = await call(server.url, 'GET', '/livez', { timeoutMs: 30_000 }).then(
    (r) => r.status,
    (e: Error) => e.message,
  );
  const jobs = await waitAllEnded(api, realPks, 120_000 + realPks.length * 3_000);
  const problems = await checkFinishedJobs(api, realPks);
  const log = rig.runLog();
  const held = await checkNothingHeld(api, realPks);
  const stray = strayFiles(rig.dir, agents.map((a) => a.dir));
  console.log(
    `[storm] seed ${seedValue}; ${requests} requests (${[...statuses].map(([k, n]) => `${k} ${n}`).join(', ')}), ${shrinks} shrink steps, ${findings.size} distinct findings; ${unanswered.length} unanswered in 15 s (replayed: ${hung.length} unanswered again); /livez slower than 5 s ${slowLivez}×; real jobs ${jobs.filter((j) => j.end_time !== null).length}/${realPks.length} ended; ${runLogSummary(log)}`,
  );

  const listed = [...findings.values()].map((f) => `${f.example}\n      on ${f.routes.size} route(s): ${[...f.routes].slice(0, 6).join(', ')}${f.routes.size > 6 ? ', …' : ''}`);
  expect(report('bad-input findings', listed)).toBe('bad-input findings: none');
  if (unanswered.length > 0) console.log(`[storm] unanswered in 15 s during the storm (answered alone: ${unanswered.length - hung.length}):\n  ${unanswered.slice(0, 5).map(describeRequest).join('\n  ')}`);
  expect(report('requests never answered (15 s in the storm, then 30 s alone)', hung)).toBe('requests never answered (15 s in the storm, then 30 s alone): none');
  expect(report('liveness during the storm', liveness)).toBe('liveness during the storm: none');
  expect(serverAlive, `the server process is alive (log ${server.proc.logFile})`).toBe(true);
  expect(livez, '/livez after the storm').toBe(200);
  expect(report('real jobs not finished as expected', problems)).toBe('real jobs not finished as expected: none');
  expect(report('runs of one job at the same time', concurrentRuns(log))).toBe('runs of one job at the same time: none');
  expect(report('held after the end', held)).toBe('held after the end: none');
  expect(report('files outside the data and agent directories', stray)).toBe('files outside the data and agent directories: none');
  for (const agent of agents) expect(agent.proc.alive, `${agent.spec.name} still runs (log ${agent.proc.logFile})`).toBe(true);
});

/** Files under `root` that are not the server's data, an agent's directory, the locks or the logs. */
function strayFiles(root: string, agentDirs: string[]): string[] {
  const allowed = [join(root, 'd1', 'd2', 'd3', 'server-data'), join(root, 'locks'), ...agentDirs];
  const stray: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (allowed.some((a) => path === a || path.startsWith(`${a}/`))) continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (!(dir === root && (entry.endsWith('.log') || entry === 'runs.log'))) stray.push(relative(root, path));
    }
  };
  walk(root);
  return stray;
}
