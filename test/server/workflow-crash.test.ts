/**
 * A workflow step is one transaction: the server (its own process, the built CLI) is SIGKILLed by a
 * fail point between a child's finish and the creation of the children that depend on it — inside
 * that transaction, and again just after it committed — and restarted on the same data and port.
 * A real agent, which keeps retrying its finish, carries the workflow on: the successor is created
 * exactly once, and the workflow finishes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { createJob, ended, importTemplate, startTestAgent, waitForJob } from '../helpers/agent.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, freePort, spawnServe, type TestServer } from '../helpers/server.js';
import type { ServerFailPoint } from '../../src/server/fail-points.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 180_000);

async function token(url: string): Promise<string> {
  const res = await api<{ access: string }>(url, 'POST', '/v1/auth/obtain', { json: { username: ADMIN_USER, password: ADMIN_PASSWORD } });
  expect(res.status).toBe(200);
  return res.body.access;
}

for (const point of ['workflow:child-finished', 'workflow:successors-committed'] satisfies ServerFailPoint[]) {
  describe(`the server SIGKILLed at ${point}`, () => {
    it('creates the successor exactly once after the restart, and the workflow finishes', async () => {
      const dataDir = await tempDir('ufdl-workflow-crash-');
      const port = await freePort();
      const first = await spawnServe(dataDir, port, { UFDL_SERVER_FAIL_POINTS: point });
      const server: TestServer = { url: first.url, dataDir, adminToken: await token(first.url), close: async () => {}, login: token };
      for (const name of ['train-epochs', 'predict']) await importTemplate(server, name);
      const workflow = await importTemplate(server, 'train-then-predict');
      await startTestAgent(server, { errorBackoffS: [0.2, 0.5, 1] });
      const parent = await createJob(server, workflow, { parameter_values: { 'train:epoch_seconds': { value: 0.05, type: 'float' } } });

      // The train child finishes; the server dies at the point.
      const exit = await first.exited;
      expect(exit.signal).toBe('SIGKILL');
      expect(first.stderr()).toContain(`fail point ${point}`);

      await spawnServe(dataDir, port);
      const done = await waitForJob(server, parent, ended, 60_000);
      expect(done.error_reason).toBeNull();

      const children = await api(server.url, 'POST', '/v1/jobs/list', {
        token: server.adminToken,
        json: { expressions: [{ type: 'exact', field: 'parent', value: parent }], include_inactive: true },
      });
      const names = (children.body as { description: string }[]).map((job) => /^child job '([^']+)'/.exec(job.description)![1]);
      expect(names).toEqual(['train', 'predict']);
      const predict = (children.body as { pk: number; end_time: string | null; error_reason: string | null }[])[1]!;
      expect(predict.end_time).not.toBeNull();
      expect(predict.error_reason).toBeNull();
    });
  });
}
