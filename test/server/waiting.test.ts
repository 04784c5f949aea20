/**
 * `PUT /v1/ufdl-agent/jobs/{pk}/waiting` (issue 9, item 7): a node's reason for not running a job is
 * kept while the job waits and shown in its JSON and in lists; only nodes may report; it is gone once
 * a node takes the job; strict-reference mode has no such route.
 */
import { request } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
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

  it('from a node deleted while the body of its report was on the way are refused as from an unknown node, never 500', async () => {
    const fx = await startWithFixtures();
    const [job] = fx.jobs(1);
    const node = fx.node(undefined, { lastSeen: null });
    const body = JSON.stringify({ reason: 'no GPU here' });
    // The headers now (the node is identified, and its last_seen set), the body later.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${fx.url}/v1/ufdl-agent/jobs/${job}/waiting`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${fx.server.adminToken}`,
          'node-id': String(node),
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
        },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.flushHeaders();
      void vi
        .waitFor(() => expect(fx.nodeRow(node).last_seen).not.toBeNull(), { timeout: 10_000 })
        .then(async () => {
          // Its owner deletes it meanwhile (nothing refers to it: it holds no job).
          expect((await fx.call('DELETE', `/v1/nodes/${node}`)).status).toBe(204);
          req.end(body);
        }, reject);
    });
    const { status, body: text } = await answer;
    expect(status).toBe(400);
    expect(JSON.parse(text)).toMatchObject({ detail: expect.stringContaining(`Bad Node-Id header '${node}'`) });
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body).not.toHaveProperty('waiting');
  });

  it('do not exist in strict-reference mode', async () => {
    const fx = await startWithFixtures({ extensions: false });
    const [job] = fx.jobs(1);
    expect((await fx.call('PUT', `/v1/ufdl-agent/jobs/${job}/waiting`, { node: fx.node(), json: { reason: 'x' } })).status).toBe(404);
  });
});
