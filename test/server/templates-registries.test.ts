import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';

describe('POST /v1/job-types/list', () => {
  it("lists the reference's type names as {pk, name, pkg, cls}", async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/job-types/list', { json: {} });
    expect(res.status).toBe(200);
    const names = res.body.map((t: { name: string }) => t.name);
    for (const name of ['UFDLType', 'str', 'int', 'float', 'bool', 'Array', 'Domain', 'Framework', 'BLOB', 'Compressed', 'JSON', 'JobOutput', 'Model', 'Name', 'PK']) {
      expect(names).toContain(name);
    }
    expect(res.body.find((t: { name: string }) => t.name === 'PK')).toEqual({
      pk: expect.any(Number),
      name: 'PK',
      pkg: 'ufdl.jobtypes',
      cls: 'ufdl.jobtypes.standard.PK',
    });
  });

  it('applies filters and refuses unknown fields', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/job-types/list', { json: { expressions: [{ type: 'contains', field: 'cls', sub_string: '.util.' }] } });
    expect(res.body.map((t: { name: string }) => t.name)).toEqual(['BLOB', 'Compressed', 'JSON', 'Nothing']);
    expect((await fx.call('POST', '/v1/job-types/list', { json: { expressions: [{ type: 'isnull', field: 'size' }] } })).status).toBe(400);
    expect((await fx.call('POST', '/v1/job-types/list', { as: null, json: {} })).status).toBe(401);
  });
});

describe('POST /v1/job-contracts/list', () => {
  it('lists Train, Predict and Export, and the Run extension', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/job-contracts/list', { json: {} });
    expect(res.status).toBe(200);
    expect(res.body.map((c: { name: string }) => c.name).sort()).toEqual(['Export', 'Predict', 'Run', 'Train']);
    expect(res.body.find((c: { name: string }) => c.name === 'Train')).toMatchObject({ pkg: 'ufdl.jobcontracts', cls: 'ufdl.jobcontracts.standard.Train' });
  });
});

describe('lists this server does not keep', () => {
  it('answer an empty array for cuda, docker, frameworks, domains and licences', async () => {
    const fx = await startWithFixtures();
    for (const name of ['cuda', 'docker', 'frameworks', 'domains', 'licences']) {
      const res = await fx.call('POST', `/v1/${name}/list`, { json: {} });
      expect(res.status, name).toBe(200);
      expect(res.body, name).toEqual([]);
      expect((await fx.call('POST', `/v1/${name}/list`, { json: { colour: 1 } })).status, name).toBe(400);
    }
  });

  it('get-all-values checks the type string and lists no values', async () => {
    const fx = await startWithFixtures();
    expect((await fx.call('GET', `/v1/job-types/get-all-values/${encodeURIComponent('Domain')}`)).body).toEqual([]);
    const bad = await fx.call('GET', `/v1/job-types/get-all-values/${encodeURIComponent('Dom<')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/^Error parsing type-string "Dom<"/);
  });
});
