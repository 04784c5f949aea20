/**
 * Two agents racing for one queue: every job runs exactly once (the children append their pk to a
 * shared file), every job finishes, and both agents did work.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, startTestServer } from '../helpers/server.js';
import { createJob, importTemplate, readRuns, shellTemplate, startTestAgent, until, type ServerJob } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';

for (const [extensions, count] of [
  [true, 200],
  [false, 60],
] as const) {
  describe(`two agents on one queue (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it(`runs each of ${count} jobs exactly once`, async () => {
      const server = await startTestServer({ extensions });
      const dir = await tempDir('ufdl-two-');
      const runs = join(dir, 'runs.txt');
      const template = await importTemplate(server, shellTemplate('once', `echo "$UFDL_JOB_PK" >> ${runs}\n`));
      const a = await startTestAgent(server, { nodeIndex: 0 });
      const b = await startTestAgent(server, { nodeIndex: 1 });
      const finished = { a: 0, b: 0 };
      a.agent.on('finished', () => finished.a++);
      b.agent.on('finished', () => finished.b++);
      const pks: number[] = [];
      for (let i = 0; i < count; i++) pks.push(await createJob(server, template));

      const list = async () => (await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: {} })).body as ServerJob[];
      await until(async () => (await list()).filter((j) => j.end_time !== null).length === count, 400_000, 'every job to end');

      const jobs = await list();
      expect(jobs.filter((j) => j.error_reason !== null)).toEqual([]);
      const ran = (await readRuns(runs)).map(Number).sort((x, y) => x - y);
      expect(ran).toEqual([...pks].sort((x, y) => x - y));
      // The agents report a job as finished once their journal says done, just after the server.
      await until(() => finished.a + finished.b === count, 10_000, 'the agents to record every job').catch((err: Error) => {
        throw new Error(`${err.message}: ${finished.a} + ${finished.b}; ${JSON.stringify([a.agent.getStatus().jobs, b.agent.getStatus().jobs])}`);
      });
      expect(finished.a).toBeGreaterThan(0);
      expect(finished.b).toBeGreaterThan(0);
    }, 480_000);
  });
}
