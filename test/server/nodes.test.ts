import { describe, expect, it } from 'vitest';
import { nodeIdentityFilter } from '../../src/protocol/filter.js';
import { ADMIN_PK, startWithFixtures } from '../helpers/fixtures.js';

const NODE_KEYS = ['pk', 'ip', 'index', 'driver_version', 'hardware_generation', 'gpu_mem', 'cpu_mem', 'last_seen', 'current_job'];
const SPEC = { ip: '10.1.2.3', index: 0, cpu_mem: 8 * 1024 ** 3, driver_version: '535.54', hardware_generation: 7, gpu_mem: 24 * 1024 ** 3 };

describe('POST /v1/nodes/create', () => {
  it('creates a node (201, reference JSON) owned by the calling user', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const res = await fx.call('POST', '/v1/nodes/create', { as: alice, json: SPEC });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(NODE_KEYS);
    expect(res.body).toMatchObject({ ...SPEC, last_seen: null, current_job: null });
    const row = fx.db.prepare('SELECT owner FROM nodes WHERE pk = ?').get(res.body.pk) as { owner: number };
    expect(row.owner).toBe(alice.pk);
  });

  it('accepts the optional fields as absent or null', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/nodes/create', { json: { ip: '10.0.0.1', index: 0, cpu_mem: 1, gpu_mem: null } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ driver_version: null, hardware_generation: null, gpu_mem: null });
  });

  it('answers 400 with a field error for each missing required field', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/nodes/create', { json: {} });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      ip: ['This field is required.'],
      index: ['This field is required.'],
      cpu_mem: ['This field is required.'],
    });
    expect(res.body.detail).toMatch(/ip: This field is required/);
  });

  it('answers 400 naming each field of a wrong type or out of range', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/nodes/create', {
      json: { ip: 42, index: -1, cpu_mem: 1.5, driver_version: 'x'.repeat(17), hardware_generation: 999, gpu_mem: '1' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      ip: ['Not a valid string.'],
      index: ['Ensure this value is greater than or equal to 0.'],
      cpu_mem: ['A valid integer is required.'],
      driver_version: ['Ensure this field has no more than 16 characters.'],
      hardware_generation: ['Invalid pk "999" - object does not exist.'],
      gpu_mem: ['A valid integer is required.'],
    });
  });

  it('answers 400 UFDL_ERR_NODE_DUPLICATE for an (ip, index) that exists, naming them', async () => {
    const fx = await startWithFixtures();
    const first = await fx.call('POST', '/v1/nodes/create', { json: SPEC });
    const again = await fx.call('POST', '/v1/nodes/create', { json: SPEC });
    expect(again.status).toBe(400);
    expect(again.body.detail).toContain(`ip '10.1.2.3' and index 0 already exists (node ${first.body.pk})`);
    const otherIndex = await fx.call('POST', '/v1/nodes/create', { json: { ...SPEC, index: 1 } });
    expect(otherIndex.status).toBe(201);
  });
});

describe('POST /v1/nodes/list', () => {
  it("finds a node with the reference worker's identity filter", async () => {
    const fx = await startWithFixtures();
    await fx.call('POST', '/v1/nodes/create', { json: { ...SPEC, index: 1 } });
    const created = await fx.call('POST', '/v1/nodes/create', { json: SPEC });
    const res = await fx.call('POST', '/v1/nodes/list', { json: nodeIdentityFilter('10.1.2.3', 0) });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([created.body]);
  });

  it('orders and filters on every node field and refuses unknown ones with 400', async () => {
    const fx = await startWithFixtures();
    const a = fx.node();
    const b = fx.node();
    const desc = await fx.call('POST', '/v1/nodes/list', { json: { order_by: [{ field: 'pk', ascending: false }] } });
    expect(desc.body.map((n: { pk: number }) => n.pk)).toEqual([b, a]);
    const idle = await fx.call('POST', '/v1/nodes/list', { json: { expressions: [{ type: 'isnull', field: 'current_job' }] } });
    expect(idle.body).toHaveLength(2);
    const bad = await fx.call('POST', '/v1/nodes/list', { json: { expressions: [{ type: 'isnull', field: 'owner' }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/Unknown field 'owner'/);
  });
});

describe('GET /v1/nodes/{pk}', () => {
  it('returns the node, or 404 Not found.', async () => {
    const fx = await startWithFixtures();
    const pk = fx.node();
    const res = await fx.call('GET', `/v1/nodes/${pk}`);
    expect(res.status).toBe(200);
    expect(res.body.pk).toBe(pk);
    const missing = await fx.call('GET', '/v1/nodes/4242');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
  });
});

describe('PUT/PATCH /v1/nodes/{pk}', () => {
  it('lets the node itself update its hardware; current_job and last_seen stay read-only', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const pk = fx.node(alice.pk);
    const job = fx.job();
    const res = await fx.call('PATCH', `/v1/nodes/${pk}`, {
      as: alice,
      node: pk,
      json: { driver_version: '550.1', gpu_mem: 1024, current_job: job, last_seen: '2000-01-01T00:00:00Z' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pk, driver_version: '550.1', gpu_mem: 1024, current_job: null });
    expect(res.body.last_seen).not.toBe('2000-01-01T00:00:00Z');
  });

  it('lets an admin PUT the whole node, and PUT needs every required field', async () => {
    const fx = await startWithFixtures();
    const pk = fx.node();
    const put = await fx.call('PUT', `/v1/nodes/${pk}`, { json: SPEC });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject(SPEC);
    const partial = await fx.call('PUT', `/v1/nodes/${pk}`, { json: { ip: '10.9.9.9' } });
    expect(partial.status).toBe(400);
    expect(partial.body).toMatchObject({ index: ['This field is required.'], cpu_mem: ['This field is required.'] });
  });

  it('refuses another node (403), the owner without a Node-Id (403) and anonymous callers (401)', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const mine = fx.node(alice.pk);
    const other = fx.node(alice.pk);
    const byOtherNode = await fx.call('PATCH', `/v1/nodes/${mine}`, { as: alice, node: other, json: { gpu_mem: 1 } });
    expect(byOtherNode.status).toBe(403);
    const byOwner = await fx.call('PATCH', `/v1/nodes/${mine}`, { as: alice, json: { gpu_mem: 1 } });
    expect(byOwner.status).toBe(403);
    expect((await fx.call('PATCH', `/v1/nodes/${mine}`, { as: null, json: { gpu_mem: 1 } })).status).toBe(401);
  });

  it("refuses a Node-Id of another user's node with 403", async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const bob = await fx.user();
    const bobs = fx.node(bob.pk);
    const res = await fx.call('PATCH', `/v1/nodes/${bobs}`, { as: alice, node: bobs, json: { gpu_mem: 1 } });
    expect(res.status).toBe(403);
  });

  it('answers 404 for an unknown node before the permission check', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    expect((await fx.call('PATCH', '/v1/nodes/999', { as: alice, json: {} })).status).toBe(404);
  });

  it('keeps (ip, index) unique on update', async () => {
    const fx = await startWithFixtures();
    const first = await fx.call('POST', '/v1/nodes/create', { json: SPEC });
    const second = await fx.call('POST', '/v1/nodes/create', { json: { ...SPEC, index: 1 } });
    const res = await fx.call('PATCH', `/v1/nodes/${second.body.pk}`, { json: { index: 0 } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain(`already exists (node ${first.body.pk})`);
  });
});

describe('DELETE /v1/nodes/{pk}', () => {
  it('deletes an unreferenced node (204, empty body)', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const pk = fx.node(alice.pk);
    const res = await fx.call('DELETE', `/v1/nodes/${pk}`, { as: alice, node: pk });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await fx.call('GET', `/v1/nodes/${pk}`)).status).toBe(404);
  });

  it('answers 204 but keeps a node that a job refers to', async () => {
    const fx = await startWithFixtures();
    const pk = fx.node();
    const job = fx.job();
    fx.db.prepare('UPDATE jobs SET node = ? WHERE pk = ?').run(pk, job);
    const res = await fx.call('DELETE', `/v1/nodes/${pk}`);
    expect(res.status).toBe(204);
    expect((await fx.call('GET', `/v1/nodes/${pk}`)).status).toBe(200);
  });

  it('refuses a user who is neither admin nor the node', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const pk = fx.node(ADMIN_PK);
    expect((await fx.call('DELETE', `/v1/nodes/${pk}`, { as: alice })).status).toBe(403);
    expect((await fx.call('GET', `/v1/nodes/${pk}`)).status).toBe(200);
  });
});

describe('GET /v1/nodes/ping', () => {
  it('answers 200 with an empty body and no content type, and updates last_seen', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const pk = fx.node(alice.pk, { lastSeen: null });
    const res = await fx.call('GET', '/v1/nodes/ping', { as: alice, node: pk });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('content-type')).toBeNull();
    expect(fx.nodeRow(pk).last_seen).not.toBeNull();
  });

  it('needs a Node-Id (403), a token (401) and a well-formed, existing node (400)', async () => {
    const fx = await startWithFixtures();
    const pk = fx.node();
    expect((await fx.call('GET', '/v1/nodes/ping')).status).toBe(403);
    expect((await fx.call('GET', '/v1/nodes/ping', { as: null, node: pk })).status).toBe(401);
    const abc = await fx.call('GET', '/v1/nodes/ping', { node: 'abc' as unknown as number });
    expect(abc.status).toBe(400);
    expect(abc.body.detail).toBe("Bad Node-Id header 'abc': Unable to parse into an integer primary-key");
    const missing = await fx.call('GET', '/v1/nodes/ping', { node: 999 });
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toBe("Bad Node-Id header '999': No node with this primary-key");
  });
});
