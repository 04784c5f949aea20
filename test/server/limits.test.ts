/**
 * The database's limits and deep JSON (issue 9, items 4 and 5): a filter with too many expressions,
 * too many `order_by` entries, a search string too long for a LIKE pattern, and a create-job whose
 * value nests thousands of levels deep each get a 400 naming the limit — never a 500. Requests just
 * within the limits still work. Searches in long texts stay cheap (a list request must not hold the
 * server for minutes).
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

describe('searches in long texts', () => {
  it('cost the server little whatever they ask: contains strings are bounded in all, and a search is not a pattern match', async () => {
    const fx = await startWithFixtures();
    // Any user may give a job a description as long as a body (1 MiB).
    const long = fx.job({ description: 'a'.repeat(1_000_000) });
    const search = (subStrings: string[], caseInsensitive: boolean) =>
      fx.call('POST', '/v1/jobs/list', {
        json: { expressions: [{ type: 'or', sub_expressions: subStrings.map((s) => ({ type: 'contains', field: 'description', sub_string: s, case_insensitive: caseInsensitive })) }] },
      });
    // Each term searches the whole text again for a needle that almost matches everywhere: 100 such
    // terms were 100 × 10,000 × 1,000,000 steps of the database's pattern matcher (minutes, during
    // which the server answered nothing).
    const needles = Array.from({ length: 100 }, (_, i) => `${'a'.repeat(FILTER_LIMITS.stringLength - 4)}${String(i).padStart(3, '0')}b`);
    const refused = await search(needles, true);
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toBe(`Filter too large: the filter's contains strings have ${100 * FILTER_LIMITS.stringLength} characters in all; at most ${FILTER_LIMITS.stringLength} are allowed`);
    // The largest search allowed, in either case mode, answers at once (a substring search, not a LIKE).
    for (const caseInsensitive of [true, false]) {
      const res = await search([needles[0]!.slice(11), 'A'.repeat(9), 'zz'], caseInsensitive);
      expect(res.status, res.text).toBe(200);
      expect(res.body.map((j: { pk: number }) => j.pk)).toEqual(caseInsensitive ? [long] : []);
    }
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
