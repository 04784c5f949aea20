/**
 * The progress history behind the dashboard's curves, on SQLite (support/progress-history-cases.ts
 * has the cases, which postgres/progress-history.test.ts runs on PostgreSQL), and through the API on
 * the store of the test project: each report filed under the attempt it was made in.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';
import { progressHistoryCases } from './support/progress-history-cases.js';
import { temporaryDatabase } from './support/database.js';

progressHistoryCases('SQLite', async () => (await temporaryDatabase('ufdl-progress-history-')).db);

describe('progress history through the API', () => {
  it('files each progress report under the attempt it was made in, across reset and abort', async () => {
    const f = await startWithFixtures();
    const [node, job] = [f.node(), f.job()];
    const steps = async () => {
      const res = await f.call('GET', `/v1/jobs/${job}/progress-history`);
      expect(res.status).toBe(200);
      return (res.body as Array<{ d: { step: number } }>).map((p) => p.d.step);
    };
    const progress = async (step: number) => {
      expect((await f.call('POST', `/v1/jobs/${job}/progress/0.${step}`, { node, json: { step } })).status).toBe(200);
      await until(async () => (await steps()).includes(step), 30_000, `progress point ${step}`);
    };
    await f.startAs(node, job);
    await progress(1);
    await progress(2);
    expect(await steps()).toEqual([1, 2]);

    // Reset, then a new attempt: its history starts empty, whatever the server remembered.
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } })).status).toBe(200);
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(200);
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: { send_notification: 'email' } })).status).toBe(200);
    await progress(3);
    expect(await steps()).toEqual([3]);

    // Aborted by the admin, acquired and started again: a third attempt.
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`)).status).toBe(200);
    await f.startAs(node, job);
    await progress(4);
    expect(await steps()).toEqual([4]);
  });
});
