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

  it('compares pks with numbers beyond 32 bits as every other list does, on every store', async () => {
    const fx = await startWithFixtures();
    for (const path of ['/v1/job-types/list', '/v1/job-contracts/list']) {
      const everything = (await fx.call('POST', path, { json: {} })).body;
      expect(everything.length).toBeGreaterThan(0);
      const below = await fx.call('POST', path, { json: { expressions: [{ type: 'compare', field: 'pk', operator: '<', value: 2147483648 }] } });
      expect(below.status, below.text).toBe(200);
      expect(below.body).toEqual(everything);
      const exact = await fx.call('POST', path, { json: { expressions: [{ type: 'exact', field: 'pk', value: 4294967296 }] } });
      expect(exact.status, exact.text).toBe(200);
      expect(exact.body).toEqual([]);
    }
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

/** The reference's seeded licences in pk order (its migrations/licences/licenses.csv). */
const REFERENCE_LICENCES = [
  'AGPL3', 'Apache 2.0', 'BSD 2-clause', 'BSD 3-clause', 'CC0', 'CC-BY-4.0', 'CC-BY-SA-4.0',
  'GPL2', 'GPL3', 'LGPL3', 'MIT', 'Mozilla Public License 2.0', 'The Unlicense', 'Proprietary',
];

describe('licences', () => {
  it("lists the reference's licences with its pks and shape, and retrieves one", async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/licences/list', { json: {} });
    expect(res.status).toBe(200);
    expect(res.body.map((l: { pk: number; name: string }) => [l.pk, l.name])).toEqual(REFERENCE_LICENCES.map((name, i) => [i + 1, name]));
    const apache = (await fx.call('GET', '/v1/licences/2')).body;
    expect(Object.keys(apache)).toEqual(['pk', 'name', 'url', 'permissions', 'conditions', 'limitations', 'domains']);
    expect(apache).toMatchObject({ pk: 2, name: 'Apache 2.0', url: 'https://opensource.org/licenses/Apache-2.0' });
    expect(new Set(apache.permissions)).toEqual(new Set(['Commercial use', 'Modification', 'Distribution', 'Patent use', 'Private use']));
    expect(new Set(apache.limitations)).toEqual(new Set(['Trademark use', 'Liability', 'Warranty']));
    const named = await fx.call('POST', '/v1/licences/list', { json: { expressions: [{ type: 'exact', field: 'name', value: 'MIT' }] } });
    expect(named.body.map((l: { pk: number }) => l.pk)).toEqual([11]);
    expect((await fx.call('GET', '/v1/licences/99')).status).toBe(404);
    expect((await fx.call('POST', '/v1/licences/list', { as: null, json: {} })).status).toBe(401);
  });

  it("gives a template the licence's pk; import takes its name, in any case or as an SPDX id, and refuses an unknown one", async () => {
    const fx = await startWithFixtures();
    const spec = (licence: string) => ({
      name: `l-${licence}`,
      scope: 'public',
      licence,
      specific: { job_type: 'Run', executor_class: 'ufdl_agent.Command', required_packages: '', parameters: {} },
    });
    for (const [name, pk] of [['Apache 2.0', 2], ['apache 2.0', 2], ['Apache-2.0', 2], ['MIT', 11], ['GPL-3.0', 9]] as const) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec(name) });
      expect(res.status, name).toBe(200);
      expect(res.body.licence, name).toBe(pk);
      expect((await fx.call('GET', `/v1/job-templates/${res.body.pk}`)).body.licence, name).toBe(pk);
      // Export gives the import format back: the licence by name.
      expect((await fx.call('GET', `/v1/job-templates/${res.body.pk}/export`)).body.licence, name).toBe(REFERENCE_LICENCES[pk - 1]);
    }
    // Case is folded for ASCII letters only, on either store (the reference's name match on its
    // default SQLite): the dotted 'İ' and the dotless 'ı' are no 'i'. PostgreSQL's own lower() in a
    // UTF-8 locale made 'MİT' the MIT licence.
    for (const name of ['MİT', 'mıt']) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec(name) });
      expect(res.status, name).toBe(400);
      expect(res.body.detail, name).toContain(`unknown licence '${name}'`);
    }
    const unknown = await fx.call('POST', '/v1/job-templates/import', { json: spec('Beerware') });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toMatch(/^Bad job template: licence: unknown licence 'Beerware'; known: AGPL3, Apache 2\.0, /);
  });
});

describe('lists this server does not keep', () => {
  it('answer an empty array for cuda, docker, frameworks and domains', async () => {
    const fx = await startWithFixtures();
    for (const name of ['cuda', 'docker', 'frameworks', 'domains']) {
      const res = await fx.call('POST', `/v1/${name}/list`, { json: {} });
      expect(res.status, name).toBe(200);
      expect(res.body, name).toEqual([]);
      expect((await fx.call('POST', `/v1/${name}/list`, { json: { colour: 1 } })).status, name).toBe(400);
    }
  });

  it("refuse a filter or an order on a field the reference's list does not have, as every other list does", async () => {
    // Before, these four answered [] to any field name, where the other lists answer 400 naming it.
    const fx = await startWithFixtures();
    const known = { cuda: 'full_version', docker: 'cuda_version', frameworks: 'version', domains: 'description' };
    // A related row's field, as the reference's filters allow (Django's spelling too).
    const related = await fx.call('POST', '/v1/docker/list', {
      json: { expressions: [{ type: 'compare', field: 'cuda_version__version', operator: '<=', value: 11.1 }], order_by: [{ field: 'framework.name' }] },
    });
    expect(related.status).toBe(200);
    expect(related.body).toEqual([]);
    for (const [name, field] of Object.entries(known)) {
      const good = await fx.call('POST', `/v1/${name}/list`, { json: { expressions: [{ type: 'exact', field, value: '1' }], order_by: [{ field: 'pk' }] } });
      expect(good.status, name).toBe(200);
      expect(good.body, name).toEqual([]);
      const filter = await fx.call('POST', `/v1/${name}/list`, { json: { expressions: [{ type: 'isnull', field: 'no_such_field' }] } });
      expect(filter.status, name).toBe(400);
      expect(filter.body.detail, name).toMatch(new RegExp(`^Unknown field 'no_such_field' in filter; known fields: .*\\b${field}\\b`));
      const order = await fx.call('POST', `/v1/${name}/list`, { json: { order_by: [{ field: 'colour' }] } });
      expect(order.status, name).toBe(400);
      expect(order.body.detail, name).toMatch(/^Unknown field 'colour' in order_by; known fields: /);
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
