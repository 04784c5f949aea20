/**
 * The database's limits and deep JSON (issue 9, items 4 and 5): a filter with too many expressions,
 * too many `order_by` entries, a search string too long for a LIKE pattern, and a create-job whose
 * value nests thousands of levels deep each get a 400 naming the limit — never a 500. Requests just
 * within the limits still work.
 */
import { describe, expect, it } from 'vitest';
import { FILTER_LIMITS } from '../../src/protocol/filter.js';
import { MAX_JSON_DEPTH } from '../../src/server/json-depth.js';
import { startWithFixtures } from '../helpers/fixtures.js';

const exact = (pk: number) => ({ type: 'exact', field: 'pk', value: pk });

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('list filters at the database limits', () => {
  it('refuses what the database could not run, with a 400 naming the limit', async () => {
    const fx = await startWithFixtures();
    fx.jobs(3);
    const cases: [string, unknown, RegExp][] = [
      ['1,001 OR terms', { expressions: [{ type: 'or', sub_expressions: Array.from({ length: 1001 }, (_, i) => exact(i + 1)) }] }, /the filter has 1001 expressions; at most 500/],
      ['2,001 order_by terms', { order_by: Array.from({ length: 2001 }, () => ({ field: 'pk' })) }, /order_by has 2001 entries; at most 100/],
      [
        'a 50,001-character case-insensitive search',
        { expressions: [{ type: 'contains', field: 'description', sub_string: '%'.repeat(50_001), case_insensitive: true }] },
        /a contains expression on 'description' has a string of 50001 characters; at most 10000/,
      ],
      ['1,001 top-level expressions', { expressions: Array.from({ length: 1001 }, (_, i) => exact(i + 1)) }, /at most 500/],
    ];
    for (const [what, body, detail] of cases) {
      const res = await fx.call('POST', '/v1/jobs/list', { json: body });
      expect(res.status, what).toBe(400);
      expect(res.body.detail, what).toMatch(detail);
    }
  });

  it('answers filters just within the limits', async () => {
    const fx = await startWithFixtures();
    const [a, b] = fx.jobs(2);
    const or = { type: 'or', sub_expressions: Array.from({ length: FILTER_LIMITS.terms }, (_, i) => exact(i + 1)) };
    const res = await fx.call('POST', '/v1/jobs/list', {
      json: {
        expressions: [or],
        order_by: Array.from({ length: FILTER_LIMITS.orderBy }, () => ({ field: 'pk', ascending: false })),
      },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.map((j: { pk: number }) => j.pk)).toEqual([b, a]);
    const search = await fx.call('POST', '/v1/jobs/list', {
      json: { expressions: [{ type: 'contains', field: 'description', sub_string: 'é%'.repeat(FILTER_LIMITS.stringLength / 2), case_insensitive: true }] },
    });
    expect(search.status, search.text).toBe(200);
    expect(search.body).toEqual([]);
  });
});

describe('deeply nested JSON bodies', () => {
  it('are refused with a 400 naming the depth limit, on create-job and every other route', async () => {
    const fx = await startWithFixtures();
    const imported = await fx.call('POST', '/v1/job-templates/import', {
      json: {
        name: 'json-param',
        version: 1,
        scope: 'public',
        licence: 'MIT',
        specific: { job_type: 'Run', executor_class: 'ufdl_agent.Command', required_packages: '', parameters: { body: { types: ['Array<str>'], default: ['true'], const: true, help: '' }, config: { types: ['JSON'], default: {}, help: '' } } },
      },
    });
    expect(imported.status, imported.text).toBe(200);
    const create = (value: unknown) =>
      fx.call('POST', `/v1/job-templates/${imported.body.pk}/create-job`, { json: { input_values: {}, parameter_values: { config: { value, type: 'JSON' } } } });
    const deep = await create(nested(4100));
    expect(deep.status).toBe(400);
    expect(deep.body.detail).toBe(`The JSON body nests more than ${MAX_JSON_DEPTH} levels deep; that is the most the server accepts`);
    // The value sits in three objects (the body, parameter_values, config): 61 arrays make 64 levels.
    expect((await create(nested(MAX_JSON_DEPTH - 3))).status).toBe(200);
    expect((await create(nested(MAX_JSON_DEPTH - 2))).status).toBe(400);
    const list = await fx.call('POST', '/v1/jobs/list', { json: { expressions: [nested(200)] } });
    expect(list.status).toBe(400);
  });
});
