/**
 * A running job's JSON carries its last progress (`progress`, an extension): the reference's job has
 * none (its progress is only in notifications), so a list of running jobs could not say how far each
 * one is. Absent while the job waits and once it has ended, and in strict-reference mode.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';

describe('a job\'s progress in its JSON', () => {
  it('is there while the job runs, in a get and a list, and gone once it ends', async () => {
    const fx = await startWithFixtures();
    const node = fx.node();
    const job = fx.job();
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body).not.toHaveProperty('progress');

    await fx.startAs(node, job);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body.progress).toBe(0);
    const reported = await fx.call('POST', `/v1/jobs/${job}/progress/0.25`, { node, json: {} });
    expect(reported.status, reported.text).toBe(200);
    expect(reported.body.progress).toBe(0.25);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body.progress).toBe(0.25);
    const listed = await fx.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'exact', field: 'pk', value: job }] } });
    expect(listed.body.map((j: { progress?: number }) => j.progress)).toEqual([0.25]);

    const finished = await fx.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: true, send_notification: 'none' } });
    expect(finished.status, finished.text).toBe(200);
    expect(finished.body).not.toHaveProperty('progress');
  });

  it('starts again from 0 when the job is reset and started again', async () => {
    const fx = await startWithFixtures();
    const node = fx.node();
    const job = fx.job();
    await fx.startAs(node, job);
    expect((await fx.call('POST', `/v1/jobs/${job}/progress/0.9`, { node, json: {} })).status).toBe(200);
    const errored = await fx.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, error: 'boom', send_notification: 'none' } });
    expect(errored.status, errored.text).toBe(200);
    expect((await fx.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(200);
    const restarted = await fx.call('POST', `/v1/jobs/${job}/start`, { node, json: { send_notification: 'none' } });
    expect(restarted.status, restarted.text).toBe(200);
    // Before, the new attempt showed the last one's 0.9 from its start.
    expect(restarted.body.progress).toBe(0);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body.progress).toBe(0);
  });

  it('is not there in strict-reference mode', async () => {
    const fx = await startWithFixtures({ extensions: false });
    const node = fx.node();
    const job = fx.job();
    await fx.startAs(node, job);
    expect((await fx.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: {} })).status).toBe(200);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body).not.toHaveProperty('progress');
  });
});
