/**
 * The server stopped for a while in the middle of a job and started again on the same data and port:
 * the job finishes and is reported, with its outputs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { ADMIN_PASSWORD, ADMIN_USER, type TestServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, until, waitForJob } from '../helpers/agent.js';

/** An embedded server that can be stopped and started again on the same data directory and port. */
async function restartableServer(extensions: boolean) {
  const dataDir = await mkdtemp(join(tmpdir(), 'ufdl-restart-'));
  let app: FastifyInstance | undefined;
  let port = 0;
  const start = async () => {
    ({ app } = await buildApp({ dataDir, port, adminUser: ADMIN_USER, adminPassword: ADMIN_PASSWORD, logLevel: false, extensions }));
    await app.listen({ host: '127.0.0.1', port });
    port = (app.server.address() as { port: number }).port;
  };
  const stop = async () => {
    await app?.close();
    app = undefined;
  };
  await start();
  const url = `http://127.0.0.1:${port}`;
  const res = await fetch(`${url}/v1/auth/obtain`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: ADMIN_USER, password: ADMIN_PASSWORD }),
  });
  const adminToken = ((await res.json()) as { access: string }).access;
  const server: TestServer = { url, dataDir, adminToken, close: stop, login: async () => adminToken };
  onTestFinished(async () => {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { server, start, stop };
}

for (const extensions of [true, false]) {
  describe(`the server restarted mid-job (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('finishes and reports the job once the server is back', async () => {
      const { server, start, stop } = await restartableServer(extensions);
      const template = await importTemplate(
        server,
        shellTemplate('outlives-the-server', 'echo "UFDL-PROGRESS 0.2"\nsleep 1.5\necho "UFDL-PROGRESS 0.9"\necho survived > "$UFDL_OUTPUT_DIR/result.txt"\n'),
      );
      const { agent } = await startTestAgent(server, { errorBackoffS: [0.2, 0.5, 1] });
      const pk = await createJob(server, template);
      await until(() => agent.getStatus().jobs.some((j) => j.jobPk === pk && j.pid !== null), 15_000, 'the child to start');
      await stop();
      // The child ends while the server is away; the agent keeps what it owes.
      await new Promise((r) => setTimeout(r, 3000));
      expect(agent.getStatus().ready).toBe(false);
      await start();
      const job = await waitForJob(server, pk, ended, 30_000);
      expect(job.error_reason).toBeNull();
      expect((await downloadOutput(server, pk, 'result.txt')).toString()).toBe('survived\n');
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'result.txt']);
      await until(() => agent.getStatus().ready, 10_000, 'the agent to be ready again');
    });
  });
}
