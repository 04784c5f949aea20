/**
 * Final-state checks on the server, shared by the scenarios. Each returns a list of problems (empty
 * = fine), so one assertion shows everything that went wrong at once.
 */
import { expect } from 'vitest';
import type { JobJson, ServerApi } from './http.js';
import { sleep } from './procs.js';
import type { AgentHandle } from './rig.js';
import { concurrentRuns, notRunExactlyOnce, type RunLog } from './runlog.js';

export const EXPECTED_OUTPUTS = ['log', 'result.txt'];

/**
 * Every job finished successfully with exactly its expected outputs (each name once; `result.txt`
 * holds the job's pk).
 */
export async function checkFinishedJobs(api: ServerApi, pks: readonly number[], opts: { downloadEvery?: number } = {}): Promise<string[]> {
  const problems: string[] = [];
  const every = opts.downloadEvery ?? 1;
  let i = 0;
  for (const pk of pks) {
    const job = await api.job(pk);
    problems.push(...jobProblems(job));
    if (job.end_time !== null && job.error_reason === null && i++ % every === 0 && job.outputs.some((o) => o.name === 'result.txt')) {
      const content = (await api.download(pk, 'result.txt')).toString('utf8');
      if (content !== `${pk}\n`) problems.push(`job ${pk}: result.txt holds ${JSON.stringify(content)}, expected ${JSON.stringify(`${pk}\n`)}`);
    }
  }
  return problems;
}

export function jobProblems(job: JobJson): string[] {
  const problems: string[] = [];
  const where = `job ${job.pk}`;
  if (job.end_time === null) {
    problems.push(`${where}: not finished (start ${job.start_time}, node ${job.node}, cancelled ${job.is_cancelled})`);
    return problems;
  }
  if (job.error_reason !== null) problems.push(`${where}: finished with an error: ${job.error_reason.slice(0, 300)}`);
  const names = job.outputs.map((o) => o.name).sort();
  if (JSON.stringify(names) !== JSON.stringify(EXPECTED_OUTPUTS)) {
    problems.push(`${where}: outputs ${JSON.stringify(names)}, expected exactly ${JSON.stringify(EXPECTED_OUTPUTS)}`);
  }
  return problems;
}

/**
 * Poll until every job has ended for good (or the time is up); returns the jobs as last seen.
 *
 * A job that ended with an error may not be over: an agent hands a job back by finishing it with an
 * error and then resetting and releasing it (the reference protocol has no single "requeue" call),
 * so an error counts as final only once it has stayed the same for `errorSettleMs`.
 */
export async function waitAllEnded(api: ServerApi, pks: readonly number[], timeoutMs: number, errorSettleMs = 10_000): Promise<JobJson[]> {
  const deadline = Date.now() + timeoutMs;
  const erroredSince = new Map<number, { endTime: string; since: number }>();
  for (;;) {
    const all = await api.jobs();
    const wanted = new Set(pks);
    const jobs = all.filter((j) => wanted.has(j.pk));
    const now = Date.now();
    const open = jobs.filter((j) => {
      if (j.end_time === null) return true;
      if (j.error_reason === null) return false;
      const seen = erroredSince.get(j.pk);
      if (seen === undefined || seen.endTime !== j.end_time) {
        erroredSince.set(j.pk, { endTime: j.end_time, since: now });
        return true;
      }
      return now - seen.since < errorSettleMs;
    });
    if (open.length === 0 && jobs.length === pks.length) return jobs;
    if (now > deadline) return jobs;
    await sleep(250);
  }
}

/** Nothing stuck: no job of `pks` held (acquired or started) by a node and not ended. */
export async function checkNothingHeld(api: ServerApi, pks: readonly number[]): Promise<string[]> {
  // Only the jobs asked about: the bad-input storm's own node legitimately works its own job. A node
  // whose current_job names one of these jobs while it holds it unended is the same fact, seen from
  // the job's side.
  const wanted = new Set(pks);
  return (await api.jobs())
    .filter((job) => wanted.has(job.pk) && job.end_time === null && job.node !== null)
    .map((job) => `job ${job.pk}: held by node ${job.node} and not ended (start ${job.start_time})`);
}

/**
 * Nodes whose `current_job` still names a job they no longer work (ended, or held by another node):
 * a stale pointer. The server ignores it (bug B8: it does not block the node's next start), so it is
 * reported, not failed.
 */
export async function staleCurrentJobs(api: ServerApi): Promise<string[]> {
  const jobs = new Map((await api.jobs()).map((j) => [j.pk, j]));
  const stale: string[] = [];
  for (const node of await api.nodes()) {
    if (node.current_job === null) continue;
    const job = jobs.get(node.current_job);
    if (!job || job.node !== node.pk || job.end_time !== null) {
      stale.push(`node ${node.pk} (${node.ip}#${node.index}) names job ${node.current_job} (${job ? `held by node ${job.node}, ${job.end_time ? 'ended' : 'not ended'}` : 'gone'})`);
    }
  }
  return stale;
}

/** The problems, or a compact list for the assertion message. */
export function report(title: string, problems: string[], max = 40): string {
  if (problems.length === 0) return `${title}: none`;
  const shown = problems.slice(0, max).map((p) => `  - ${p}`);
  if (problems.length > max) shown.push(`  … and ${problems.length - max} more`);
  return `${title} (${problems.length}):\n${shown.join('\n')}`;
}

/**
 * The verdict on a queue that agents worked: every job of `pks` finished with its outputs
 * (`finishedProblems`, from {@link checkFinishedJobs}), ran exactly once to its end and never twice
 * at once (the run log), nothing is held (`held`, from {@link checkNothingHeld}), and every agent
 * still runs. One assertion per kind, each listing every problem.
 */
export function expectEachJobOnce(v: { log: RunLog; pks: readonly number[]; finishedProblems: string[]; held: string[]; agents: readonly AgentHandle[] }): void {
  expect(v.log.malformed, 'malformed run-log lines').toEqual([]);
  expect(report('jobs not finished as expected', v.finishedProblems)).toBe('jobs not finished as expected: none');
  expect(report('jobs not run exactly once', notRunExactlyOnce(v.log, v.pks))).toBe('jobs not run exactly once: none');
  expect(report('runs of one job at the same time', concurrentRuns(v.log))).toBe('runs of one job at the same time: none');
  expect(report('held after the end', v.held)).toBe('held after the end: none');
  for (const agent of v.agents) expect(agent.proc.alive, `${agent.spec.name} is still running (log ${agent.proc.logFile})`).toBe(true);
}
