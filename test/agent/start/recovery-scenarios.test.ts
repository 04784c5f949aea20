/**
 * Recovery rules beyond the single crash: a `current_job` the journal does not know (the reference
 * rule), poison jobs (max_restarts), a job cancelled while the agent was down, and self-fencing when
 * the server is unreachable longer than its lost-node limit allows.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeServerUrl } from '../../../src/agent/journal/index.js';
import { migrate, MIGRATIONS } from '../../../src/agent/journal/schema.js';
import { NODE_RESTARTED_ERROR } from '../../../src/agent/start/recovery-rules.js';
import { buildOnce } from '../../helpers/build.js';
import { api, restartableServer, startTestServer } from '../../helpers/server.js';
import {
  alive,
  createJob,
  ended,
  fastAgentOptions,
  getJob,
  importTemplate,
  readRuns,
  recordingLogger,
  type ServerJob,
  shellTemplate,
  spawnAgent,
  startTestAgent,
  until,
  waitForJob,
} from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

const succeeded = (j: ServerJob) => ended(j) && j.error_reason === null;

/** First run sleeps long; later runs are quick. Each run appends "<pk> <pid>" to `runs`. */
function onceSlowScript(runs: string, seconds = 30): string {
  return [
    `if grep -q "^$UFDL_JOB_PK " ${runs} 2>/dev/null; then pause=0.1; else pause=${seconds}; fi`,
    `echo "$UFDL_JOB_PK $$" >> ${runs}`,
    'sleep "$pause"',
    'echo done',
    '',
  ].join('\n');
}

for (const extensions of [true, false]) {
  describe(`a current_job unknown to the journal (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('is finished with an error, reset and released (the reference rule), then runs again', async () => {
      const server = await startTestServer({ extensions });
      const template = await importTemplate(server, shellTemplate('orphan', 'echo ran\n'));
      const pk = await createJob(server, template);
      // A previous life of this node (same identity) started the job; its journal is lost.
      const node = await api(server.url, 'POST', '/v1/nodes/create', {
        token: server.adminToken,
        json: { ip: '127.0.0.1', index: 0, cpu_mem: 1024 },
      });
      expect(node.status).toBe(201);
      const nodeId = (node.body as { pk: number }).pk;
      expect((await api(server.url, 'GET', `/v1/jobs/${pk}/acquire`, { token: server.adminToken, nodeId })).status).toBe(200);
      expect((await api(server.url, 'POST', `/v1/jobs/${pk}/start`, { token: server.adminToken, nodeId, json: { send_notification: 'email' } })).status).toBe(200);

      const { agent } = await startTestAgent(server);
      expect(agent.getStatus().slots[0]!.nodePk).toBe(nodeId);
      const job = await waitForJob(server, pk, succeeded);
      expect(job.node).toBe(nodeId);
      const nodeNow = await api(server.url, 'GET', `/v1/nodes/${nodeId}`, { token: server.adminToken });
      expect((nodeNow.body as { current_job: number | null }).current_job).toBeNull();
    });
  });
}

describe('poison jobs', () => {
  it('fails a job that crashed the agent max_restarts times instead of retrying it forever', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-poison-');
    const template = await importTemplate(server, shellTemplate('poison', 'echo never\n'));
    const pk = await createJob(server, template);
    const options = fastAgentOptions(server, dir, { maxRestarts: 2 });
    const env = { UFDL_AGENT_FAIL_POINTS: 'starting:after-http' };
    for (let life = 1; life <= 2; life++) {
      const agent = spawnAgent(options, env);
      expect(await agent.exited, `life ${life}:\n${agent.output().slice(-3000)}`).toEqual({ code: null, signal: 'SIGKILL' });
    }
    const last = spawnAgent(options, env);
    const job = await waitForJob(server, pk, ended, 20_000);
    expect(job.error_reason).toContain(NODE_RESTARTED_ERROR);
    expect(job.error_reason).toMatch(/Not retried: the job was interrupted 2 times/);
    // It stays failed: not requeued, and the agent lives on (the fail point is never reached again).
    await new Promise((r) => setTimeout(r, 1000));
    expect((await getJob(server, pk)).error_reason).toMatch(/Not retried/);
    expect(last.child.exitCode).toBeNull();
    last.kill('SIGTERM');
    expect(await last.exited).toEqual({ code: 0, signal: null });
  });
});

for (const extensions of [true, false]) {
  describe(`a job cancelled while the agent was down (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('stops the still-running child and clears current_job with the silent finish', async () => {
      const server = await startTestServer({ extensions });
      const dir = await tempDir('ufdl-cancel-down-');
      const runs = join(dir, 'runs.txt');
      const template = await importTemplate(server, shellTemplate('long', onceSlowScript(runs)));
      const pk = await createJob(server, template);
      const options = fastAgentOptions(server, dir);
      const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: 'running:after-write' });
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await until(() => existsSync(runs), 10_000, 'the child to run');
      const [line] = await readRuns(runs);
      const childPid = Number(line!.split(' ')[1]);
      expect(alive(childPid)).toBe(true);

      expect((await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken })).status).toBe(200);
      const second = spawnAgent(options);
      await second.waitForLog((l) => l.action === 'cleanup');
      await until(() => !alive(childPid), 10_000, 'the orphaned child to be stopped');
      const nodes = async () => ((await api(server.url, 'POST', '/v1/nodes/list', { token: server.adminToken, json: {} })).body as { current_job: number | null }[]);
      await until(async () => (await nodes()).every((n) => n.current_job === null), 10_000, 'current_job to be cleared');
      const job = await getJob(server, pk);
      expect(job.is_cancelled).toBe(true);
      expect(await readRuns(runs)).toHaveLength(1);
      second.kill('SIGTERM');
      expect(await second.exited).toEqual({ code: 0, signal: null });
    });
  });
}

describe('self-fencing', () => {
  it('stops the child before the server gives the job away, then reports consistently when it is back', async () => {
    const { server, start, stop } = await restartableServer({ lostAfterSeconds: 4, sweepIntervalSeconds: 1 });
    const dir = await tempDir('ufdl-fence-agent-');
    const runs = join(dir, 'runs.txt');
    const template = await importTemplate(server, shellTemplate('fenced', onceSlowScript(runs)));
    const { agent } = await startTestAgent(server, { fenceMarginMs: 1500, errorBackoffS: [0.2, 0.5, 1] }, dir);
    expect(agent.getStatus().fence?.thresholdMs).toBe(2500);
    const fenced: { jobs: number[]; silentMs: number }[] = [];
    agent.on('fenced', (e) => fenced.push(e));
    const pk = await createJob(server, template);
    await until(() => existsSync(runs), 15_000, 'the child to run');
    const childPid = Number((await readRuns(runs))[0]!.split(' ')[1]);

    await stop();
    await until(() => fenced.length > 0, 10_000, 'the agent to fence itself');
    expect(fenced[0]!.jobs).toEqual([pk]);
    // Before the server's lost_after (4 s) could hand the job to someone else.
    expect(fenced[0]!.silentMs).toBeLessThan(4000);
    await until(() => !alive(childPid), 5000, 'the child to be stopped');
    expect(agent.getStatus().ready).toBe(false);

    await new Promise((r) => setTimeout(r, 2500));
    await start();
    const job = await waitForJob(server, pk, succeeded, 40_000);
    expect(job.outputs.map((o) => o.name)).toContain('log');
    // The fenced run, and the run after the job was given back; never two at once.
    expect(await readRuns(runs)).toHaveLength(2);
    await until(() => agent.getStatus().ready, 10_000, 'ready again');
  });
});

/**
 * A journal as an agent of schema 2 left it: job `jobPk`, acquired and started as `nodePk`, in
 * `finishing` with a decided finish whose requeue schema 2 did not record (only the error's text).
 */
function schema2Journal(path: string, serverUrl: string, job: { jobPk: number; nodePk: number; error: string }): void {
  const db = new Database(path);
  try {
    migrate(db, path, MIGRATIONS.slice(0, 2));
    const at = new Date().toISOString();
    db.prepare(
      `INSERT INTO jobs (server_url, job_pk, node_pk, state, slot, exit_code, finish_decided, finish_error, runs, state_times, created_at, updated_at, state_since)
       VALUES (?, ?, ?, 'finishing', 0, 143, 1, ?, 1, '{}', ?, ?, ?)`,
    ).run(normalizeServerUrl(serverUrl), job.jobPk, job.nodePk, job.error, at, at, at);
  } finally {
    db.close();
  }
}

for (const extensions of [true, false]) {
  describe(`a journal written before schema 3 (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('delivers a journalled shutdown finish as a requeue: reset, released, and run again', async () => {
      const server = await startTestServer({ extensions });
      const dir = await tempDir('ufdl-old-journal-');
      const template = await importTemplate(server, shellTemplate('old-journal', 'echo ran\n'));
      const pk = await createJob(server, template);
      // A previous life of this node started the job, then was stopped: it decided a finish that
      // sends the job back to the queue, and died before it was delivered.
      const node = await api(server.url, 'POST', '/v1/nodes/create', { token: server.adminToken, json: { ip: '127.0.0.1', index: 0, cpu_mem: 1024 } });
      const nodeId = (node.body as { pk: number }).pk;
      expect((await api(server.url, 'GET', `/v1/jobs/${pk}/acquire`, { token: server.adminToken, nodeId })).status).toBe(200);
      expect((await api(server.url, 'POST', `/v1/jobs/${pk}/start`, { token: server.adminToken, nodeId, json: { send_notification: 'email' } })).status).toBe(200);
      schema2Journal(join(dir, 'journal.sqlite3'), server.url, { jobPk: pk, nodePk: nodeId, error: 'The node is shutting down; the job will run again elsewhere.' });

      const { logger, lines } = recordingLogger();
      await startTestAgent(server, {}, dir, logger);
      expect(lines.find((l) => l.msg === 'recovery decision' && l.job === pk)).toMatchObject({ action: 'refinish' });
      const job = await waitForJob(server, pk, succeeded);
      expect(job.node).toBe(nodeId);
      expect(job.outputs.map((o) => o.name)).toContain('log');
    });
  });
}
