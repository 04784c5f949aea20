/**
 * An agent restarted with fewer slots than it had (the configuration changed, a GPU is gone) may find
 * more unfinished jobs in its journal than it has slots. A job left without a slot is reported as
 * interrupted and requeued to run again; its child, if it still runs, must be stopped first, or the job
 * runs twice at once: here, unwatched, and wherever it runs next.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import {
  alive,
  createJob,
  fastAgentOptions,
  getJob,
  importTemplate,
  readRuns,
  shellTemplate,
  spawnAgent,
  until,
  waitForJob,
} from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** The process group of `pid` (its wrapper's), from `/proc`. */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('an agent restarted with fewer slots than jobs in its journal', () => {
  it('stops the child of a job it has no slot for before it requeues the job', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-fewer-slots-');
    const runs = join(dir, 'runs.txt');
    // Each run appends "<pk> <pid of the script>", then runs long.
    const template = await importTemplate(server, shellTemplate('long', `echo "$UFDL_JOB_PK $$" >> ${runs}\nsleep 60\n`));
    const pks = [await createJob(server, template), await createJob(server, template)];

    const first = spawnAgent(fastAgentOptions(server, dir, { slots: 2 }));
    await until(async () => (await readRuns(runs)).length === 2, 30_000, 'both jobs to run');
    first.kill('SIGKILL');
    await first.exited;
    const pids = new Map((await readRuns(runs)).map((line) => line.split(' ').map(Number) as [number, number]));
    expect([...pids.values()].every(alive)).toBe(true);

    const second = spawnAgent(fastAgentOptions(server, dir, { slots: 1 }));
    await second.waitForLog((l) => l.msg === 'test agent running', 30_000);
    // One job is re-attached in the only slot; the other was finished with an error and requeued.
    const jobs = await Promise.all(pks.map((pk) => getJob(server, pk)));
    const requeued = jobs.find((j) => j.start_time === null);
    expect(requeued, JSON.stringify(jobs)).toBeDefined();
    await waitForJob(server, requeued!.pk, (j) => j.node === null && j.start_time === null, 10_000);
    await until(() => !alive(pids.get(requeued!.pk)!), 10_000, `the child of the requeued job ${requeued!.pk} to be stopped`);
    // The re-attached one runs on, watched.
    const kept = jobs.find((j) => j.pk !== requeued!.pk)!;
    expect(alive(pids.get(kept.pk)!)).toBe(true);
    second.kill('SIGKILL');
    for (const pid of pids.values()) if (alive(pid)) process.kill(-processGroup(pid), 'SIGKILL');
  }, 120_000);
});
