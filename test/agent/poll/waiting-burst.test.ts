/**
 * A poll that skips many jobs at once (a queue full of jobs for an executor this node does not run)
 * tells the server why for every one of them, a few requests at a time: not one request per job all
 * at once, which competed with the node's own calls and drew a MaxListenersExceededWarning from the
 * client's shared closing signal.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestAgent, until } from '../../helpers/agent.js';
import { startWithFixtures } from '../../helpers/fixtures.js';

const SKIPPED = 60;

describe('why-it-waits reports of a deep skip', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => void warnings.push(w);
  beforeEach(() => void process.on('warning', onWarning));
  afterEach(() => void process.off('warning', onWarning));

  it('reports every skipped job, at most two requests at a time', { timeout: 90_000 }, async () => {
    const f = await startWithFixtures();
    const elsewhere = f.db
      .prepare(`INSERT INTO templates (name, version, type, executor_class, parameters, creation_time) VALUES ('elsewhere', 1, 'Run', 'elsewhere.Executor', '{}', ?)`)
      .run(new Date().toISOString()).lastInsertRowid;
    const skipped = f.jobs(SKIPPED, { template: Number(elsewhere) });

    // The server's own view of the reports: how many are in flight at once, and the most ever.
    let inFlight = 0;
    let most = 0;
    let reports = 0;
    f.server.onRequest((request, response) => {
      if (request.method !== 'PUT' || !/\/jobs\/\d+\/waiting$/.test(request.url ?? '')) return;
      reports += 1;
      most = Math.max(most, ++inFlight);
      // In flight until its answer is sent (or its connection lost).
      response.once('close', () => void (inFlight -= 1));
    });

    await startTestAgent(f.server);
    const reasonOf = async (pk: number) => ((await f.call('GET', `/v1/jobs/${pk}`)).body as { waiting?: { reason: string }[] }).waiting;
    await until(async () => (await Promise.all(skipped.map(reasonOf))).every((w) => w !== undefined), 60_000, 'every skipped job to show why it waits');

    for (const pk of skipped) expect((await reasonOf(pk))?.map((w) => w.reason)).toEqual(["executor class 'elsewhere.Executor' is not one this node runs (ufdl_agent.Command, ufdl_agent.Shell)"]);
    expect(reports).toBeGreaterThanOrEqual(SKIPPED);
    expect(most).toBeLessThanOrEqual(2);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String)).toEqual([]);
  });
});
