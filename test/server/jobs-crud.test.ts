/**
 * The job resource outside the lifecycle: list with filters,
 * retrieve, update, soft delete, create (forbidden), hard delete (B7), reinstate; and B1/B14.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { startWithFixtures } from '../helpers/fixtures.js';

describe('POST /v1/jobs/list', () => {
  it('lists every active job in pk order, with or without a body or trailing slash', async () => {
    const f = await startWithFixtures();
    const jobs = f.jobs(3);
    for (const [path, json] of [['/v1/jobs/list', undefined], ['/v1/jobs/list/', {}]] as const) {
      const res = await f.call('POST', path, json === undefined ? {} : { json });
      expect(res.status).toBe(200);
      expect(res.body.map((j: { pk: number }) => j.pk)).toEqual(jobs);
    }
  });

  it('applies the reference worker’s poll filter: only unstarted, unacquired, uncancelled jobs', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const [free, acquired, started, cancelled] = f.jobs(4);
    await f.call('GET', `/v1/jobs/${acquired}/acquire`, { node });
    await f.startAs(f.node(), started!);
    await f.call('DELETE', `/v1/jobs/${cancelled}/cancel`);
    const res = await f.call('POST', '/v1/jobs/list', { json: pollFilter() });
    expect(res.status).toBe(200);
    expect(res.body.map((j: { pk: number }) => j.pk)).toEqual([free]);
  });

  it('filters with exact/contains/compare/or and orders by a dotted field (B14)', async () => {
    const f = await startWithFixtures();
    const b = f.template('b-template');
    const a = f.template('a-template');
    const jb = f.job({ template: b, description: 'train cats' });
    const ja = f.job({ template: a, description: 'train dogs' });
    f.job({ template: a, description: 'predict' });
    const contains = await f.call('POST', '/v1/jobs/list', {
      json: { expressions: [{ type: 'contains', field: 'description', sub_string: 'train' }], order_by: [{ field: 'template.name' }] },
    });
    expect(contains.body.map((j: { pk: number }) => j.pk)).toEqual([ja, jb]);
    const django = await f.call('POST', '/v1/jobs/list', {
      json: { expressions: [{ type: 'compare', field: 'pk', operator: '<=', value: jb }], order_by: [{ field: 'template__name', ascending: false }] },
    });
    expect(django.body.map((j: { pk: number }) => j.pk)).toEqual([jb]);
    const or = await f.call('POST', '/v1/jobs/list', {
      json: {
        expressions: [
          {
            type: 'or',
            sub_expressions: [
              { type: 'exact', field: 'template.name', value: 'b-template' },
              { type: 'exact', field: 'description', value: 'PREDICT', case_insensitive: true },
            ],
          },
        ],
      },
    });
    expect(or.body.map((j: { description: string }) => j.description)).toEqual(['train cats', 'predict']);
  });

  it('can filter on is_cancelled (an extension; B4 jobs included)', async () => {
    const f = await startWithFixtures();
    const [, cancelled] = f.jobs(2);
    await f.call('DELETE', `/v1/jobs/${cancelled}/cancel`);
    const res = await f.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'exact', field: 'is_cancelled', value: true }] } });
    expect(res.body.map((j: { pk: number }) => j.pk)).toEqual([cancelled]);
  });

  it('hides soft-deleted jobs unless include_inactive', async () => {
    const f = await startWithFixtures();
    const [kept, deleted] = f.jobs(2);
    expect((await f.call('DELETE', `/v1/jobs/${deleted}`)).status).toBe(204);
    expect((await f.call('POST', '/v1/jobs/list', { json: {} })).body.map((j: { pk: number }) => j.pk)).toEqual([kept]);
    const all = await f.call('POST', '/v1/jobs/list', { json: { include_inactive: true } });
    expect(all.body.map((j: { pk: number }) => j.pk)).toEqual([kept, deleted]);
    expect(all.body[1].deletion_time).toEqual(expect.any(String));
  });

  it('answers case-insensitive filters on number, flag and time fields, and booleans for times, on every store (never a 500)', async () => {
    const f = await startWithFixtures();
    const [job] = f.jobs(1);
    const matches = async (expression: Record<string, unknown>): Promise<number[]> => {
      const res = await f.call('POST', '/v1/jobs/list', { json: { expressions: [expression] } });
      expect(res.status, `${JSON.stringify(expression)}: ${res.text}`).toBe(200);
      return res.body.map((j: { pk: number }) => j.pk);
    };
    // A search in a number is a search in its digits, whatever the case flag says.
    expect(await matches({ type: 'contains', field: 'pk', sub_string: String(job), case_insensitive: true })).toEqual([job]);
    expect(await matches({ type: 'contains', field: 'template.workabletemplate', sub_string: '1', case_insensitive: true })).toEqual([job]);
    expect(await matches({ type: 'contains', field: 'is_cancelled', sub_string: 'x', case_insensitive: true })).toEqual([]);
    expect(await matches({ type: 'exact', field: 'pk', value: String(job), case_insensitive: true })).toEqual([job]);
    expect(await matches({ type: 'exact', field: 'creation_time', value: true })).toEqual([]);
    // A word where a number goes is the client's 400 (the next test); none of these is a 500.
    for (const [what, json] of [
      ['jobs', { type: 'exact', field: 'pk', value: 'abc', case_insensitive: true }],
      ['jobs', { type: 'exact', field: 'template.workabletemplate', value: 'abc', case_insensitive: true }],
      ['nodes', { type: 'contains', field: 'index', sub_string: '0', case_insensitive: true }],
      ['job-templates', { type: 'contains', field: 'version', sub_string: '1', case_insensitive: true }],
      ['job-outputs', { type: 'contains', field: 'job', sub_string: '1', case_insensitive: true }],
    ] as const) {
      const res = await f.call('POST', `/v1/${what}/list`, { json: { expressions: [json] } });
      expect([200, 400], `${what} ${JSON.stringify(json)}: ${res.text}`).toContain(res.status);
    }
  });

  it('compares number fields with any number alike on every store (fractions, numbers beyond bigint); text that is no number is a 400 naming the field', async () => {
    const f = await startWithFixtures();
    const [a, b] = f.jobs(2) as [number, number];
    const all = [a, b];
    const matches = async (expression: Record<string, unknown>): Promise<number[]> => {
      const res = await f.call('POST', '/v1/jobs/list', { json: { expressions: [expression] } });
      // PostgreSQL answered 400 "out of range for type bigint" or "invalid input syntax for type bigint".
      expect(res.status, `${JSON.stringify(expression)}: ${res.text}`).toBe(200);
      return res.body.map((j: { pk: number }) => j.pk);
    };
    const pk = (operator: string, value: number) => matches({ type: 'compare', field: 'pk', operator, value });
    expect(await pk('>', a + 0.5)).toEqual([b]);
    expect(await pk('>=', a + 0.5)).toEqual([b]);
    expect(await pk('<', a + 0.5)).toEqual([a]);
    expect(await pk('<=', a + 0.5)).toEqual([a]);
    for (const huge of [1e20, 2 ** 63, 9223372036854775807]) {
      expect(await pk('<', huge)).toEqual(all);
      expect(await pk('>=', huge)).toEqual([]);
      expect(await pk('>', -huge)).toEqual(all);
      expect(await pk('<=', -huge)).toEqual([]);
      expect(await matches({ type: 'exact', field: 'pk', value: huge })).toEqual([]);
      expect(await matches({ type: 'exact', field: 'pk', value: huge, invert: true })).toEqual(all);
    }
    expect(await matches({ type: 'exact', field: 'pk', value: a + 0.5 })).toEqual([]);
    expect(await matches({ type: 'exact', field: 'pk', value: String(a) })).toEqual([a]);
    expect(await matches({ type: 'compare', field: 'progress_amount', operator: '<', value: 1e308 })).toEqual(all);
    // SQLite compared the text and matched nothing (or, with `<`, everything); PostgreSQL refused it.
    for (const [field, value] of [['pk', 'abc'], ['creator', '10.0.0.1'], ['progress_amount', 'infinity'], ['template.version', ''], ['pk', '0x10'], ['pk', '0b1']] as const) {
      for (const expression of [{ type: 'exact', field, value }, { type: 'compare', field, operator: '<', value }]) {
        const res = await f.call('POST', '/v1/jobs/list', { json: { expressions: [expression] } });
        expect(res.status, `${JSON.stringify(expression)}: ${res.text}`).toBe(400);
        expect(res.body.detail).toBe(`Filter value ${JSON.stringify(value)} for field '${field}' is not a number; '${field}' holds numbers`);
      }
    }
  });

  it('orders nulls as SQLite does on every store when order_by does not say (first going up, last going down)', async () => {
    const f = await startWithFixtures();
    const [waiting, running] = f.jobs(2) as [number, number];
    await f.startAs(f.node(), running);
    const order = async (entry: Record<string, unknown>): Promise<number[]> => {
      const res = await f.call('POST', '/v1/jobs/list', { json: { order_by: [entry] } });
      expect(res.status, res.text).toBe(200);
      return res.body.map((j: { pk: number }) => j.pk);
    };
    // PostgreSQL's default is the other way round: the running job came first going up.
    expect(await order({ field: 'node' })).toEqual([waiting, running]);
    expect(await order({ field: 'start_time', ascending: true })).toEqual([waiting, running]);
    expect(await order({ field: 'node', ascending: false })).toEqual([running, waiting]);
    // Said out loud, it is obeyed.
    expect(await order({ field: 'node', nulls_first: false })).toEqual([running, waiting]);
    expect(await order({ field: 'node', ascending: false, nulls_first: true })).toEqual([waiting, running]);
  });

  it('B14: unknown fields in filters and order_by are a 400 naming the field', async () => {
    const f = await startWithFixtures();
    for (const json of [
      { expressions: [{ type: 'isnull', field: 'no_such_field' }] },
      { order_by: [{ field: 'template.no_such_field' }] },
    ]) {
      const res = await f.call('POST', '/v1/jobs/list', { json });
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(/Unknown field '(no_such_field|template.no_such_field)'/);
    }
  });

  it('rejects schema violations, arrays and unknown keys with 400', async () => {
    const f = await startWithFixtures();
    for (const json of [[], { expressions: [{ type: 'nope', field: 'pk' }] }, { unknown_key: 1 }, { include_inactive: 'yes' }]) {
      const res = await f.call('POST', '/v1/jobs/list', { json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.detail).toEqual(expect.any(String));
    }
  });

  it('needs authentication (401) and answers a wrong method with 405 JSON (B1)', async () => {
    const f = await startWithFixtures();
    expect((await f.call('POST', '/v1/jobs/list', { as: null })).status).toBe(401);
    const get = await f.call('GET', '/v1/jobs/list');
    expect(get.status).toBe(405);
    expect(get.body.detail).toMatch(/not allowed/);
    expect((await f.call('POST', `/v1/jobs/${f.job()}/acquire`)).status).toBe(405);
  });
});

describe('GET /v1/jobs/{pk}', () => {
  it('returns the job JSON with the reference’s keys in order, soft-deleted jobs included', async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'd', inputValues: { n: { value: 1, type: 'int' } } });
    await f.call('DELETE', `/v1/jobs/${job}`);
    const res = await f.call('GET', `/v1/jobs/${job}/`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual([
      'pk', 'template', 'parent', 'start_time', 'end_time', 'error_reason', 'input_values', 'parameter_values',
      'node', 'outputs', 'description', 'is_cancelled', 'creator', 'creation_time', 'deletion_time',
    ]);
    expect(res.body).toMatchObject({
      pk: job,
      template: { name: 'test-template', version: 1 },
      input_values: { n: { value: 1, type: 'int' } },
      parameter_values: {},
      outputs: [],
      creator: 1,
    });
    expect(res.body.deletion_time).toEqual(expect.any(String));
  });

  it('is 401 anonymous and 404 unknown', async () => {
    const f = await startWithFixtures();
    expect((await f.call('GET', `/v1/jobs/${f.job()}`, { as: null })).status).toBe(401);
    expect((await f.call('GET', '/v1/jobs/9999')).body).toEqual({ detail: 'Not found.' });
  });

  it('is 404 for digits no pk reaches (beyond bigint, beyond the safe integers), on every store, as for any unknown job or output', async () => {
    const f = await startWithFixtures();
    // PostgreSQL answered 400 "out of range for type bigint" for the first where SQLite found nothing.
    for (const pk of ['9223372036854775807', '9223372036854775808', '9007199254740993']) {
      for (const [method, path] of [
        ['GET', `/v1/jobs/${pk}`],
        ['DELETE', `/v1/jobs/${pk}/cancel`],
        ['GET', `/v1/jobs/${pk}/outputs/log/BLOB`],
        ['GET', `/v1/job-outputs/${pk}`],
        ['DELETE', `/v1/job-outputs/${pk}/hard`],
      ] as const) {
        const res = await f.call(method, path);
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
        expect(res.body).toEqual({ detail: 'Not found.' });
      }
    }
  });
});

describe('PUT/PATCH /v1/jobs/{pk}', () => {
  it('updates only the description; other keys are ignored', async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'old' });
    const res = await f.call('PATCH', `/v1/jobs/${job}`, { json: { description: 'new', node: 5, pk: 77 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pk: job, description: 'new', node: null });
    const put = await f.call('PUT', `/v1/jobs/${job}`, { json: { description: 42 } });
    expect(put.body.description).toBe('42');
    expect((await f.call('PUT', `/v1/jobs/${job}`, { json: {} })).body.description).toBe('42');
  });

  it('rejects null and non-string descriptions with 400', async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'keep' });
    const nul = await f.call('PUT', `/v1/jobs/${job}`, { json: { description: null } });
    expect(nul.status).toBe(400);
    expect(nul.body.detail).toBe('description: This field may not be null.');
    for (const description of [true, { a: 1 }, [1]]) {
      const res = await f.call('PATCH', `/v1/jobs/${job}`, { json: { description } });
      expect(res.status).toBe(400);
      expect(res.body.detail).toBe('description: Not a valid string.');
    }
    expect(f.jobRow(job)?.description).toBe('keep');
  });

  it('is admin only (403, 401) and 404 for an unknown job', async () => {
    const f = await startWithFixtures();
    const user = await f.user();
    const job = f.job({ creator: user.pk });
    expect((await f.call('PATCH', `/v1/jobs/${job}`, { as: user, json: { description: 'x' } })).status).toBe(403);
    expect((await f.call('PATCH', `/v1/jobs/${job}`, { as: null, json: { description: 'x' } })).status).toBe(401);
    expect((await f.call('PATCH', '/v1/jobs/9999', { json: { description: 'x' } })).status).toBe(404);
  });
});

describe('DELETE /v1/jobs/{pk} and /reinstate', () => {
  it('soft-deletes with 204 and an empty body, repeatably, and reinstates', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    for (let i = 0; i < 2; i++) {
      const res = await f.call('DELETE', `/v1/jobs/${job}`);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
    }
    const reinstated = await f.call('DELETE', `/v1/jobs/${job}/reinstate`);
    expect(reinstated.status).toBe(200);
    expect(reinstated.body.deletion_time).toBeNull();
    expect((await f.call('DELETE', `/v1/jobs/${job}/reinstate`)).status).toBe(200);
  });

  it('are admin only and 404 for unknown jobs', async () => {
    const f = await startWithFixtures();
    const user = await f.user();
    const job = f.job();
    expect((await f.call('DELETE', `/v1/jobs/${job}`, { as: user })).status).toBe(403);
    expect((await f.call('DELETE', `/v1/jobs/${job}/reinstate`, { as: user })).status).toBe(403);
    expect((await f.call('DELETE', '/v1/jobs/9999')).status).toBe(404);
    expect((await f.call('DELETE', '/v1/jobs/9999/reinstate')).status).toBe(404);
  });
});

describe('POST /v1/jobs/create', () => {
  it('is always forbidden: 403, or 401 anonymous', async () => {
    const f = await startWithFixtures();
    const res = await f.call('POST', '/v1/jobs/create', { json: { template: 1 } });
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/create-job/);
    expect((await f.call('POST', '/v1/jobs/create', { as: null, json: {} })).status).toBe(401);
  });
});

describe('DELETE /v1/jobs/{pk}/hard', () => {
  it('B7: removes a job that has outputs and a working node, clears current_job, and returns the job as it was', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job({ description: 'doomed' });
    await f.startAs(node, job);
    const upload = await f.call('POST', `/v1/jobs/${job}/outputs/log/BLOB`, {
      node,
      body: 'bytes',
      headers: { 'content-disposition': 'attachment; filename=log', 'content-type': 'application/data' },
    });
    expect(upload.status).toBe(200);
    const res = await f.call('DELETE', `/v1/jobs/${job}/hard`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ pk: job, description: 'doomed', node, outputs: [{ name: 'log', type: 'BLOB' }] });
    expect((await f.call('GET', `/v1/jobs/${job}`)).status).toBe(404);
    expect(f.nodeRow(node).current_job).toBeNull();
    expect(f.db.prepare('SELECT COUNT(*) AS n FROM outputs WHERE job = ?').get(job)).toEqual({ n: 0 });
    expect((await f.call('GET', `/v1/job-outputs/${upload.body.pk}`)).status).toBe(404);
    // The node is free for other work.
    const next = f.job();
    await f.startAs(node, next);
  });

  it('is admin only and 404 for an unknown job', async () => {
    const f = await startWithFixtures();
    const user = await f.user();
    const job = f.job();
    expect((await f.call('DELETE', `/v1/jobs/${job}/hard`, { as: user })).status).toBe(403);
    expect(f.jobRow(job)).toBeDefined();
    expect((await f.call('DELETE', '/v1/jobs/9999/hard')).status).toBe(404);
  });
});
