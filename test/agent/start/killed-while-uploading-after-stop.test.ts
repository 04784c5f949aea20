/**
 * The agent killed while it uploads the log of a job it stopped for a shutdown (the drain timeout
 * passed): the child is stopped, its exit status (killed by SIGTERM) recorded, the journal in
 * `uploading`. The stop was the agent's, not the job's failure: the restarted agent must requeue the
 * job — back to the queue with no error, then run again to success — never report the stopped run's
 * exit as the job's own error.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openReadOnly } from '../../../src/agent/journal/index.js';
import { buildOnce } from '../../helpers/build.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, readRuns, shellTemplate, spawnAgent, until, type ServerJob, restartUntil } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

/**
 * Points inside `uploading` on the shutdown path, where only the log goes up: before any upload, and
 * after the log's upload landed but before the journal knew (killed-at-every-state.test.ts kills at
 * the others after a SIGQUIT).
 */
const UPLOADING_POINTS = ['uploading:after-write', 'output-uploading:after-http'] as const;

/** The first run waits to be stopped; a later run (after the requeue) ends at once with its output. */
function childScript(runs: string): string {
  return [
    `if grep -q "^$UFDL_JOB_PK " ${runs} 2>/dev/null; then pause=0.2; else pause=60; fi`,
    `echo "$UFDL_JOB_PK $$" >> ${runs}`,
    'sleep "$pause"',
    'echo "result of job $UFDL_JOB_PK" > "$UFDL_OUTPUT_DIR/result.txt"',
    'echo done',
    '',
  ].join('\n');
}

/** The journal's entry for job `pk`, read beside the dead agent. */
function journalEntry(path: string, pk: number) {
  const journal = openReadOnly(path);
  try {
    return journal.get(pk);
  } finally {
    journal.close();
  }
}

async function stoppedKilledAndRecovered(point: string): Promise<void> {
  const server = await startTestServer();
  const dir = await tempDir('ufdl-stopped-upload-');
  const runs = join(dir, 'runs.txt');
  const template = await importTemplate(server, shellTemplate('stopped', childScript(runs)));
  const pk = await createJob(server, template);
  // A drain that times out at once: the first SIGTERM stops the job for the shutdown.
  const options = fastAgentOptions(server, dir, { drainTimeoutMs: 200 });

  const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: point });
  await first.waitForLog((l) => l.msg === 'child started', 20_000);
  await until(async () => (await readRuns(runs)).some((l) => l.startsWith(`${pk} `)), 20_000, 'the first run to begin');
  first.kill('SIGTERM');
  expect(await first.exited, `the fail point ${point} did not fire:\n${first.output().slice(-3000)}`).toEqual({ code: null, signal: 'SIGKILL' });
  expect(first.output()).toContain('drain timeout');

  // Killed while uploading, after the stopped child's exit was recorded: the journal already says why it ended.
  const entry = journalEntry(options.journalFile!, pk);
  expect(entry).toMatchObject({ state: 'uploading', exitSignal: 'SIGTERM' });
  expect(entry?.finish?.requeue, JSON.stringify(entry)).toBe(true);

  const { job, agent: second } = await restartUntil(server, pk, options, (j: ServerJob) => ended(j) && j.error_reason === null);

  // Requeued, not errored: the stopped run's exit was never reported as the job's.
  expect(second.lines().find((l) => l.msg === 'recovery decision')).toMatchObject({ job: pk, state: 'uploading', action: 'refinish' });
  expect(job.error_reason).toBeNull();
  expect((await readRuns(runs)).filter((l) => l.startsWith(`${pk} `))).toHaveLength(2);
  expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
}

describe('the agent killed while uploading the log of a job it stopped for a shutdown', () => {
  it(`requeues the job after a restart (SIGKILL at ${UPLOADING_POINTS.join(', ')})`, async () => {
    // Independent scenarios (own server, journal, work directory): run at once, each failure named.
    const results = await Promise.allSettled(UPLOADING_POINTS.map((point) => stoppedKilledAndRecovered(point)));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${UPLOADING_POINTS[i]}: ${(r.reason as Error).message}`] : []));
    expect(failures).toEqual([]);
  });
});
