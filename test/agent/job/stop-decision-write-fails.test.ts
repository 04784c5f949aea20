/**
 * A shutdown whose stop cannot journal the finish it decides (the disk is full). The decision's write
 * ran inside the child supervisor's stop, before the child's group was signalled: its error escaped
 * the stop, so the child was never stopped, and the jobs after it in the shutdown's loop were not
 * stopped either. Now the child is stopped all the same, the agent says why the journal failed, and
 * the job is not lost: it ends without an error of its own (requeued and run again) once an agent
 * can write the journal.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, readRuns, shellTemplate, spawnAgent, until, type ServerJob, restartUntil } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

/** Whether process `pid` still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a shutdown stop whose decision the journal cannot take', () => {
  it('stops the child all the same, and the job runs again without an error of its own', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-stop-full-');
    const runs = join(dir, 'runs.txt');
    // The first run waits to be stopped (its pid recorded); a later run ends at once.
    const script = [
      `if grep -q "^$UFDL_JOB_PK " ${runs} 2>/dev/null; then pause=0.2; else pause=60; fi`,
      `echo "$UFDL_JOB_PK $$" >> ${runs}`,
      'sleep "$pause" & wait $!',
      'echo done > "$UFDL_OUTPUT_DIR/result.txt"',
      '',
    ].join('\n');
    const template = await importTemplate(server, shellTemplate('stop-full', script));
    const pk = await createJob(server, template);
    // A drain that times out at once: the first SIGTERM stops the job for the shutdown.
    const options = fastAgentOptions(server, dir, { drainTimeoutMs: 200 });

    const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'stop-decision:write-full' });
    await first.waitForLog((l) => l.msg === 'child started', 20_000);
    await until(async () => (await readRuns(runs)).some((l) => l.startsWith(`${pk} `)), 20_000, 'the first run to begin');
    const childPid = Number((await readRuns(runs)).find((l) => l.startsWith(`${pk} `))!.split(' ')[1]);
    first.kill('SIGTERM');
    await first.waitForLog((l) => l.msg === 'the journal could not record why the job is stopped; stopping it all the same', 20_000);
    // The child is stopped although its stop's decision was not journalled.
    await until(async () => !alive(childPid), 30_000, `the stopped job's child (pid ${childPid}) to end`);
    const exit = await first.exited;
    expect(exit.code === 70 || exit.signal !== null, `${JSON.stringify(exit)}\n${first.output().slice(-4000)}`).toBe(false);
    expect(first.output()).not.toContain('job runner failed unexpectedly');

    const { job } = await restartUntil(server, pk, options, (j: ServerJob) => ended(j) && j.error_reason === null, { timeoutMs: 45_000, earlier: first });
    expect(job.error_reason).toBeNull();
    expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
  }, 120_000);
});
