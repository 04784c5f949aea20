/**
 * The reference rule (a node's `current_job` that the journal does not know: finish it with an error,
 * reset and release it so that it runs again) is three calls. An agent killed between them must leave
 * the next start enough to finish the job's way back to the queue: after the finish the node no longer
 * names the job as its `current_job`, so the rule alone would not find it again, and the job stayed
 * ERRORED (killed after the finish) or CREATED and held by this node, which no node's poll lists
 * (killed after the reset) — for good.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE_RESTARTED_ERROR } from '../../../src/agent/start/recovery-rules.js';
import { buildOnce } from '../../helpers/build.js';
import { api, startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, getJob, importTemplate, readRuns, type ServerJob, shellTemplate, restartUntil, spawnAgent } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

const succeeded = (j: ServerJob) => ended(j) && j.error_reason === null;

describe('an agent killed while applying the reference rule', () => {
  for (const point of ['finishing:after-http', 'releasing:after-reset-http']) {
    it(`leaves the job on its way back to the queue (killed at ${point}); the next start runs it`, async () => {
      const server = await startTestServer();
      const dir = await tempDir('ufdl-reference-rule-');
      const runs = join(dir, 'runs');
      const template = await importTemplate(server, shellTemplate('orphan', `echo run >> '${runs}'\n`));
      const pk = await createJob(server, template);
      // A previous life of this node (the same address and index) started the job; its journal is lost.
      const node = await api(server.url, 'POST', '/v1/nodes/create', { token: server.adminToken, json: { ip: '127.0.0.1', index: 0, cpu_mem: 1024 } });
      const nodeId = (node.body as { pk: number }).pk;
      expect((await api(server.url, 'GET', `/v1/jobs/${pk}/acquire`, { token: server.adminToken, nodeId })).status).toBe(200);
      expect((await api(server.url, 'POST', `/v1/jobs/${pk}/start`, { token: server.adminToken, nodeId, json: { send_notification: 'email' } })).status).toBe(200);
      const options = fastAgentOptions(server, dir);

      const first = spawnAgent(options, { UFDL_AGENT_FAIL_POINTS: point });
      expect(await first.exited, first.output().slice(-3000)).toEqual({ code: null, signal: 'SIGKILL' });
      expect(first.output()).toContain(`fail point ${point}`);
      const between = await getJob(server, pk);
      expect(between.error_reason ?? NODE_RESTARTED_ERROR).toBe(NODE_RESTARTED_ERROR);

      const { job } = await restartUntil(server, pk, options, succeeded);
      expect(job.node).toBe(nodeId);
      expect(await readRuns(runs)).toEqual(['run']);
    });
  }
});
