/**
 * The agent killed with SIGKILL at every journal state (named fail points, `UFDL_AGENT_FAIL_POINTS`),
 * then restarted without the fail point on the same journal and work directory. Afterwards, on the
 * server: the job finished, exactly once (its child appends each run to a shared file), with every
 * output exactly once, and no job left acquired or started without an agent.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer, type TestServer } from '../../helpers/server.js';
import {
  createJob,
  ended,
  fastAgentOptions,
  importTemplate,
  readRuns,
  shellTemplate,
  spawnAgent,
  until,
  waitForJob,
  type ServerJob,
} from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

/** Points on the way of an ordinary job, in order. */
const JOB_POINTS = [
  'acquiring:after-write',
  'acquiring:after-http',
  'acquired:after-write',
  'acquired:after-http',
  'preparing:after-write',
  'preparing:after-http',
  'starting:after-write',
  'starting:after-http',
  'child:after-spawn',
  'running:after-write',
  'running:after-http',
  'child:after-exit',
  'child-exit:after-write',
  'output-pending:after-write',
  'uploading:after-write',
  'output-uploading:after-write',
  'output-uploading:after-http',
  'output-uploaded:after-write',
  'finishing:after-write',
  'finishing:after-http',
  'done:after-write',
] as const;

/** Points on the requeue path (stop now, then reset and release). */
const REQUEUE_POINTS = ['finishing:after-write', 'finishing:after-http', 'releasing:after-write', 'releasing:after-reset-http', 'releasing:after-http'] as const;

/**
 * Points on the requeue path between the stop and `finishing` (the child stopped, the log uploaded):
 * the stop was the agent's, not the job's failure, so the next start must requeue the job as the stop
 * would have, never report the stopped run as the job's own error.
 */
const STOPPED_POINTS = [
  'child:after-exit',
  'child-exit:after-write',
  'output-pending:after-write',
  'uploading:after-write',
  'output-uploading:after-write',
  'output-uploaded:after-write',
] as const;

const REFERENCE_MODE_POINTS = new Set(['acquired:after-write', 'starting:after-http', 'running:after-write', 'output-uploading:after-http', 'finishing:after-write']);

async function jobsHeldWithoutAgent(server: TestServer): Promise<ServerJob[]> {
  const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: {} });
  return (res.body as ServerJob[]).filter((j) => j.node !== null && j.end_time === null && !j.is_cancelled);
}

async function nodes(server: TestServer): Promise<{ pk: number; current_job: number | null }[]> {
  const res = await api(server.url, 'POST', '/v1/nodes/list', { token: server.adminToken, json: {} });
  return res.body as { pk: number; current_job: number | null }[];
}

function childScript(runs: string, firstRunSeconds: number, laterRunSeconds: number): string {
  return [
    `if grep -q "^$UFDL_JOB_PK " ${runs} 2>/dev/null; then pause=${laterRunSeconds}; else pause=${firstRunSeconds}; fi`,
    `echo "$UFDL_JOB_PK $$" >> ${runs}`,
    'echo "UFDL-PROGRESS 0.5 {\\"step\\": 1}"',
    'sleep "$pause"',
    'echo "result of job $UFDL_JOB_PK" > "$UFDL_OUTPUT_DIR/result.txt"',
    'echo "UFDL-PROGRESS 1.0"',
    'sleep 0.2',
    'echo done',
    '',
  ].join('\n');
}

async function crashAndRecover(point: string, options: { extensions?: boolean; requeue?: boolean } = {}) {
  const server = await startTestServer({ extensions: options.extensions ?? true });
  const dir = await tempDir('ufdl-crash-');
  const runs = join(dir, 'runs.txt');
  const requeue = options.requeue ?? false;
  const template = await importTemplate(server, shellTemplate('crash', childScript(runs, requeue ? 30 : 0.6, 0.3)));
  const pk = await createJob(server, template);
  const agentOptions = fastAgentOptions(server, dir, { cancelCheckIntervalMs: 200 });

  const first = spawnAgent(agentOptions, { UFDL_AGENT_FAIL_POINTS: point });
  if (requeue) {
    // Stop it once its first run has begun (has written its line), so the run after the requeue is a later run.
    await first.waitForLog((l) => l.msg === 'child started', 20_000);
    await until(async () => (await readRuns(runs)).some((l) => l.startsWith(`${pk} `)), 20_000, 'the first run to begin');
    first.kill('SIGQUIT');
  }
  const died = await Promise.race([first.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
  expect(died, `the fail point ${point} did not fire:\n${first.output().slice(-3000)}`).toEqual({ code: null, signal: 'SIGKILL' });
  // 'exit' can come before the last of stderr is read (the fail point writes its line, then SIGKILLs).
  await until(async () => first.output().includes(`fail point ${point}`), 10_000, `the line of the fail point ${point}`);

  const second = spawnAgent(agentOptions);
  await second.waitForLog((l) => l.msg === 'test agent running', 30_000);
  // A requeued job is ERRORED for a moment (finish with an error, then reset): wait for success.
  const finished = (j: ServerJob) => ended(j) && j.error_reason === null;
  const job = await waitForJob(server, pk, finished, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n--- second agent ---\n${second.output().slice(-6000)}`);
  });
  second.kill('SIGTERM');
  const exit = await second.exited;
  expect(exit, second.output().slice(-3000)).toEqual({ code: 0, signal: null });

  // Finished, and the run the journal knew about was never repeated.
  expect(job.error_reason, second.output().slice(-3000)).toBeNull();
  const jobRuns = (await readRuns(runs)).filter((l) => l.startsWith(`${pk} `));
  expect(jobRuns).toHaveLength(requeue ? 2 : 1);
  // Every output exactly once.
  expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
  // Nothing held without an agent; no node still working a job.
  expect(await jobsHeldWithoutAgent(server)).toEqual([]);
  expect((await nodes(server)).filter((n) => n.current_job !== null)).toEqual([]);
}

/**
 * Scenarios are independent (own server, journal, work directory), so a few run at once: the agents
 * mostly wait, and the suite stays quick. Every failure names its fail point.
 */
async function all(points: readonly string[], options: { extensions?: boolean; requeue?: boolean } = {}): Promise<void> {
  const results = await Promise.allSettled(points.map((point) => crashAndRecover(point, options)));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${points[i]}: ${(r.reason as Error).message}`] : []));
  expect(failures).toEqual([]);
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

describe('the agent killed at every journal state', () => {
  for (const group of chunks(JOB_POINTS, 4)) {
    it(`recovers after SIGKILL at ${group.join(', ')}`, async () => {
      await all(group);
    });
  }
});

describe('the agent killed while requeueing a job it stopped', () => {
  for (const group of chunks(REQUEUE_POINTS, 3)) {
    it(`recovers after SIGKILL at ${group.join(', ')} on the requeue path`, async () => {
      await all(group, { requeue: true });
    });
  }
});

describe('the agent killed between stopping a job and deciding its finish', () => {
  for (const group of chunks(STOPPED_POINTS, 3)) {
    it(`recovers after SIGKILL at ${group.join(', ')} on the requeue path`, async () => {
      await all(group, { requeue: true });
    });
  }
});

describe('reference mode', () => {
  for (const group of chunks([...REFERENCE_MODE_POINTS], 3)) {
    it(`recovers after SIGKILL at ${group.join(', ')} (no extensions)`, async () => {
      await all(group, { extensions: false });
    });
  }
});
