/**
 * A deep queue: an agent asks for the head of the queue only (`X-UFDL-Limit`: the jobs it skips plus
 * a margin), yet a job it can run behind more jobs it cannot run than one poll lists is still reached.
 */
import { describe, expect, it } from 'vitest';
import { createJob, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { startWithFixtures } from '../../helpers/fixtures.js';

describe('agent on a deep queue', () => {
  it('reaches a runnable job behind more unrunnable ones than one poll lists', async () => {
    const f = await startWithFixtures();
    // Jobs of a template whose executor this node does not run, ahead of everything else.
    const elsewhere = f.db
      .prepare(`INSERT INTO templates (name, version, type, executor_class, parameters, creation_time) VALUES ('elsewhere', 1, 'Run', 'elsewhere.Executor', '{}', ?)`)
      .run(new Date().toISOString()).lastInsertRowid;
    const unrunnable = f.jobs(100, { template: Number(elsewhere) });
    const template = await importTemplate(f.server, shellTemplate('runnable', 'true'));
    const job = await createJob(f.server, template);
    await startTestAgent(f.server);
    const done = await waitForJob(f.server, job, ended, 60_000);
    expect(done.error_reason).toBeNull();
    // The jobs it cannot run are still waiting for a node that can.
    const head = await f.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'isnull', field: 'node' }] } });
    expect(head.body.map((j: { pk: number }) => j.pk)).toEqual(unrunnable);
  });
});
