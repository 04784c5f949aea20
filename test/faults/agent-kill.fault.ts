/**
 * Scenario 1 (issue 5; docs/ARCHITECTURE.md, "Recovery"): the agent SIGKILLed at a random moment of a running workload,
 * many times in a row with restarts on the same journal and work directory, then every job's final
 * state checked on the server.
 *
 * Each round starts `ufdl-agent run` (two slots) and kills it with SIGKILL either after a random delay
 * (start-up, recovery, polling, running, uploading — wherever it happens to be) or, on about half of
 * the rounds, at a random named fail point of the journal (`UFDL_AGENT_FAIL_POINTS`, a random hit
 * count), with a random delay as the fallback when the point is not reached. The job children outlive
 * the agent (their own process groups) and keep writing the run log. The queue is topped up so the
 * workload is always running. After the last kill, a clean agent runs until the queue is done.
 *
 * Checked: every job finished successfully with exactly its outputs (max_restarts is raised so that
 * crashes of the node never turn a job into an error), no two runs of one job at once (run log), no
 * node or job left held, and the clean agent still runs.
 */
import { expect, it } from 'vitest';
import { FAIL_POINTS, type FailPoint } from '../../src/agent/fail-points.js';
import { checkFinishedJobs, checkNothingHeld, jobProblems, report, staleCurrentJobs, waitAllEnded } from './helpers/checks.js';
import { sleep } from './helpers/procs.js';
import { Rig } from './helpers/rig.js';
import { concurrentRuns, runLogSummary } from './helpers/runlog.js';
import { Random, scale, seed } from './helpers/scale.js';

const S = scale();

it(`the agent SIGKILLed ${S.agentKill.kills} times at random moments of a running workload: no job stuck, none run twice at once, no output lost or doubled`, async () => {
  const seedValue = seed();
  const rnd = new Random(seedValue);
  console.log(`[agent-kill] seed ${seedValue} (UFDL_FAULTS_SEED to replay the choices)`);
  const rig = Rig.forTest('agent-kill');
  const t0 = Date.now();
  const server = await rig.startServer();
  const api = rig.admin(server);
  const template = await api.importTemplate(rig.workloadTemplate('agent-kill'));
  const { kills, jobs: initialJobs, slots, maxTicks } = S.agentKill;

  const pks: number[] = [];
  const ended = new Set<number>();
  const addJobs = async (n: number) => {
    for (let i = 0; i < n; i++) pks.push(await api.createJob(template, { ticks: { value: rnd.int(1, maxTicks), type: 'int' } }));
  };
  await addJobs(initialJobs);

  const agentDir = `${rig.dir}/agent`;
  const agentEnv = { UFDL_AGENT_MAX_RESTARTS: '1000' };
  const rounds: string[] = [];
  for (let round = 1; round <= kills; round++) {
    const useFailPoint = rnd.chance(0.5);
    const failPoint = useFailPoint ? `${rnd.pick(FAIL_POINTS)}#${rnd.int(1, 3)}` : undefined;
    const delayMs = rnd.int(300, 3500);
    const agent = await rig.startAgent(
      { name: `agent-${String(round).padStart(2, '0')}`, dir: agentDir, serverUrl: server.url, slots, env: agentEnv, ...(failPoint ? { failPoints: failPoint } : {}) },
      false,
    );
    // The fail point may fire at any moment (even during start-up); the delay is its fallback.
    const fired = await Promise.race([agent.proc.exited.then(() => true), sleep(failPoint ? Math.max(delayMs, 4000) : delayMs).then(() => false)]);
    if (!fired) await agent.proc.kill('SIGKILL');
    const exit = await agent.proc.exited;
    const firedLine = /fail point (\S+) \(hit \d+\): SIGKILL/.exec(agent.proc.log());
    rounds.push(firedLine ? `fail point ${firedLine[1]}` : `SIGKILL after ${delayMs} ms${failPoint ? ` (${failPoint} not reached)` : ''}`);
    if (exit.signal !== 'SIGKILL') {
      throw new Error(`round ${round}: the agent exited by itself (${JSON.stringify(exit)}) before it was killed; log ${agent.proc.logFile}`);
    }
    // Keep the workload running: top the queue up when it runs low.
    for (const job of await api.jobs(template)) if (job.end_time !== null) ended.add(job.pk);
    const open = pks.length - ended.size;
    if (open < slots * 3) await addJobs(slots * 3 - open + rnd.int(0, 2));
    await sleep(rnd.int(0, 300));
  }
  console.log(`[agent-kill] rounds: ${rounds.join('; ')}`);

  // A clean agent until the queue is done, then a little longer (nothing may be left held).
  const clean = await rig.startAgent({ name: 'agent-clean', dir: agentDir, serverUrl: server.url, slots, env: agentEnv });
  const jobs = await waitAllEnded(api, pks, 180_000 + pks.length * 3_000);
  await sleep(2_000);
  const elapsedS = (Date.now() - t0) / 1000;

  const problems = await checkFinishedJobs(api, pks);
  const log = rig.runLog();
  const concurrent = concurrentRuns(log);
  const held = await checkNothingHeld(api, pks);
  const neverRan = pks.filter((pk) => !(log.byJob.get(pk) ?? []).some((r) => r.ended));
  const stale = await staleCurrentJobs(api);
  const reruns = [...log.byJob].filter(([, r]) => r.length > 1).map(([pk, r]) => `${pk}: ${r.map((x) => (x.ended ? 'ended' : `stopped@${x.ticks}`)).join('+')}`);
  console.log(
    `[agent-kill] ${kills} kills, ${pks.length} jobs (${jobs.filter((j) => j.end_time !== null).length} ended) in ${elapsedS.toFixed(1)} s; ${runLogSummary(log)}${reruns.length > 0 ? ` (${reruns.join(', ')})` : ''}; stale current_job: ${stale.length === 0 ? 'none' : stale.join('; ')}`,
  );

  expect(log.malformed, 'malformed run-log lines').toEqual([]);
  expect(report('jobs not finished as expected', problems)).toBe('jobs not finished as expected: none');
  expect(report('runs of one job at the same time', concurrent)).toBe('runs of one job at the same time: none');
  expect(report('held after the end', held)).toBe('held after the end: none');
  expect(neverRan, 'finished jobs without a complete run in the run log').toEqual([]);
  expect(clean.proc.alive, `the clean agent still runs (log ${clean.proc.logFile})`).toBe(true);
});

/**
 * The same checks, one named fail point at a time ("the agent killed with SIGKILL at every
 * journal state"), with a job long enough to outlive the agent's restart: the agent dies at the point
 * (or by SIGKILL after a while when its flow never reaches it), a clean agent restarts on the same
 * journal, and the job must end successfully with exactly its outputs, never twice at once, nothing
 * held. `full` goes through every point; `ci` through a seeded sample.
 */
it('the agent SIGKILLed at named fail points, one at a time, with a job that outlives the restart', async () => {
  const seedValue = seed();
  const rnd = new Random(seedValue ^ 0x5eed);
  const all = FAIL_POINTS.map(stagesFor);
  const cases = S.name === 'full' ? all : sample(rnd, all, S.agentKill.failPointSample);
  console.log(`[agent-kill/points] seed ${seedValue}; cases: ${cases.map((c) => c.join(' then ')).join(', ')}`);
  const rig = Rig.forTest('agent-kill-points');
  const server = await rig.startServer();
  const api = rig.admin(server);
  const template = await api.importTemplate(rig.workloadTemplate('agent-kill-points'));
  const agentDir = `${rig.dir}/agent`;
  const env = { UFDL_AGENT_MAX_RESTARTS: '1000' };

  const problems: string[] = [];
  const outcomes: string[] = [];
  const pks: number[] = [];
  for (const [i, stages] of cases.entries()) {
    const point = stages.at(-1)!;
    const pk = await api.createJob(template, { ticks: { value: 10, type: 'int' } }, `fail point ${point}`);
    pks.push(pk);
    const logs: string[] = [];
    const fired: boolean[] = [];
    for (const [j, stage] of stages.entries()) {
      const armed = await rig.startAgent({ name: `armed-${String(i).padStart(2, '0')}-${j}`, dir: agentDir, serverUrl: server.url, failPoints: stage, env }, false);
      const died = await Promise.race([armed.proc.exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!died) await armed.proc.kill('SIGKILL');
      await armed.proc.exited;
      fired.push(died);
      logs.push(armed.proc.logFile);
    }
    const clean = await rig.startAgent({ name: `clean-${String(i).padStart(2, '0')}`, dir: agentDir, serverUrl: server.url, env });
    logs.push(clean.proc.logFile);
    const [job] = await waitAllEnded(api, [pk], 60_000);
    const found = [...jobProblems(job!), ...(await checkNothingHeld(api, [pk]))];
    if (!clean.proc.alive) found.push(`the clean agent exited: ${JSON.stringify(clean.proc.exit)}`);
    problems.push(...found.map((p) => `${stages.join(' then ')}: ${p} (logs ${logs.join(', ')})`));
    outcomes.push(`${point}: ${fired.at(-1) ? 'fired' : 'not reached'}${found.length > 0 ? ' — PROBLEM' : ''}`);
    await clean.proc.kill('SIGKILL');
  }
  const log = rig.runLog();
  console.log(`[agent-kill/points] ${outcomes.join('; ')}; ${runLogSummary(log)}`);
  const final = await checkFinishedJobs(api, pks);
  expect(report('fail points that left a job wrong', problems)).toBe('fail points that left a job wrong: none');
  expect(report('jobs not finished as expected at the end', final)).toBe('jobs not finished as expected at the end: none');
  expect(report('runs of one job at the same time', concurrentRuns(log))).toBe('runs of one job at the same time: none');
});

/**
 * The agents to start, each armed with one point, before the clean one. A job is handed back
 * (`releasing`) only when recovery requeues it, so those points are armed on the restart after a
 * crash between start and spawn.
 */
function stagesFor(point: FailPoint): string[] {
  return point.startsWith('releasing:') ? ['starting:after-http', point] : [point];
}

function sample<T>(rnd: Random, items: readonly T[], n: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(pool.splice(rnd.int(0, pool.length - 1), 1)[0]!);
  return out;
}
