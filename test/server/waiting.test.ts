/**
 * `PUT /v1/ufdl-agent/jobs/{pk}/waiting` (issue 9, item 7): a node's reason for not running a job is
 * kept while the job waits and shown in its JSON and in lists; only nodes may report; it is gone once
 * a node takes the job; strict-reference mode has no such route.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';

describe('waiting reasons', () => {
  it('are kept per node while the job waits, shown in its JSON and in lists, and vanish once it is taken', async () => {
    const fx = await startWithFixtures();
    const [job, other] = fx.jobs(2);
    const a = fx.node();
    const b = fx.node();
    const put = (node: number | undefined, pk: number, body: unknown) =>
      fx.call('PUT', `/v1/ufdl-agent/jobs/${pk}/waiting`, { ...(node === undefined ? {} : { node }), json: body });
    expect((await put(a, job!, { reason: 'no GPU here' })).status).toBe(204);
    expect((await put(b, job!, { reason: 'no Docker engine' })).status).toBe(204);
    expect((await put(a, job!, { reason: 'no GPU here' })).status).toBe(204);
    const shown = (await fx.call('GET', `/v1/jobs/${job}`)).body;
    expect(shown.waiting).toEqual([
      { node: a, reason: 'no GPU here', since: expect.any(String) },
      { node: b, reason: 'no Docker engine', since: expect.any(String) },
    ]);
    const listed = (await fx.call('POST', '/v1/jobs/list', { json: {} })).body as { pk: number; waiting?: unknown }[];
    expect(listed.find((j) => j.pk === job)!.waiting).toEqual(shown.waiting);
    expect(listed.find((j) => j.pk === other)).not.toHaveProperty('waiting');

    await fx.startAs(a, job!);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body).not.toHaveProperty('waiting');
    // A report about a job that no longer waits changes nothing.
    expect((await put(b, job!, { reason: 'late' })).status).toBe(204);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body).not.toHaveProperty('waiting');
  });

  it('need a node, a reason, and an existing job', async () => {
    const fx = await startWithFixtures();
    const [job] = fx.jobs(1);
    const node = fx.node();
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { json: { reason: 'x' } })).status).toBe(403);
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { node, json: { reason: '' } })).status).toBe(400);
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { node, json: { reason: 'x'.repeat(1001) } })).status).toBe(400);
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/999/waiting`, { node, json: { reason: 'x' } })).status).toBe(404);
    const mallory = await fx.user();
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { node, as: mallory, json: { reason: 'x' } })).status).toBe(403);
  });

  it('do not exist in strict-reference mode', async () => {
    const fx = await startWithFixtures({ extensions: false });
    const [job] = fx.jobs(1);
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { node: fx.node(), json: { reason: 'x' } })).status).toBe(404);
  });
});
