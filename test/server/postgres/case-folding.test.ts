/**
 * Case-insensitive list filters (`case_insensitive` on `exact` and `contains`) find the same rows on
 * SQLite and on PostgreSQL, over real HTTP, and the rows the reference finds on its default database:
 * Django writes `iexact` / `icontains` on SQLite as `LIKE`, which folds ASCII letters only. So `a`
 * finds `A`, while `é` does not find `É`, `ı` is not `I`, `ſ` is not `S` and `İ` is not `i` (as
 * PostgreSQL's `lower()` in a UTF-8 locale would have it: the store once used it, and `İ` found
 * `admin`). `%`, `_` and `\` are characters like any other, never LIKE wildcards.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures, type Fixtures } from '../../helpers/fixtures.js';
import { usePgCluster } from '../../helpers/postgres.js';

const cluster = usePgCluster();
let databases = 0;

const DESCRIPTIONS = [
  'admin',
  'İstanbul',
  'istanbul',
  'ıstanbul',
  'Édith',
  'édith',
  'Straße',
  'STRASSE',
  'ſtraße',
  'ΣΟΦΟΣ',
  'σοφος',
  '100% Done_1\\é',
  'done11\\é 100 percent',
] as const;

type Description = (typeof DESCRIPTIONS)[number];

/** [what the filter is, the filter, the descriptions of the jobs it lists]. */
const CASES: [string, Record<string, unknown>, Description[]][] = [
  ['contains İ', { type: 'contains', sub_string: 'İ' }, ['İstanbul']],
  ['exact İSTANBUL', { type: 'exact', value: 'İSTANBUL' }, ['İstanbul']],
  ['exact ISTANBUL', { type: 'exact', value: 'ISTANBUL' }, ['istanbul']],
  ['contains ı', { type: 'contains', sub_string: 'ı' }, ['ıstanbul']],
  ['contains I', { type: 'contains', sub_string: 'I' }, ['admin', 'istanbul', 'Édith', 'édith']],
  ['contains ADMIN', { type: 'contains', sub_string: 'ADMIN' }, ['admin']],
  ['exact Admin', { type: 'exact', value: 'Admin' }, ['admin']],
  ['exact édith', { type: 'exact', value: 'édith' }, ['édith']],
  ['exact éDITH', { type: 'exact', value: 'éDITH' }, ['édith']],
  ['contains É', { type: 'contains', sub_string: 'É' }, ['Édith']],
  ['contains EDITH', { type: 'contains', sub_string: 'EDITH' }, []],
  ['contains ß', { type: 'contains', sub_string: 'ß' }, ['Straße', 'ſtraße']],
  ['contains ss', { type: 'contains', sub_string: 'ss' }, ['STRASSE']],
  ['contains str', { type: 'contains', sub_string: 'str' }, ['Straße', 'STRASSE']],
  ['exact STRAßE', { type: 'exact', value: 'STRAßE' }, ['Straße']],
  ['contains ſ', { type: 'contains', sub_string: 'ſ' }, ['ſtraße']],
  ['contains σ', { type: 'contains', sub_string: 'σ' }, ['σοφος']],
  ['contains ς', { type: 'contains', sub_string: 'ς' }, ['σοφος']],
  ['exact σοφοσ', { type: 'exact', value: 'σοφοσ' }, []],
  ['contains %', { type: 'contains', sub_string: '%' }, ['100% Done_1\\é']],
  ['contains _', { type: 'contains', sub_string: '_' }, ['100% Done_1\\é']],
  ['contains \\', { type: 'contains', sub_string: '\\' }, ['100% Done_1\\é', 'done11\\é 100 percent']],
  ['contains % DONE_1\\é', { type: 'contains', sub_string: '% DONE_1\\é' }, ['100% Done_1\\é']],
  ['exact 100% DONE_1\\é', { type: 'exact', value: '100% DONE_1\\é' }, ['100% Done_1\\é']],
  ['exact 100_ done_1\\é', { type: 'exact', value: '100_ done_1\\é' }, []],
  ['exact %', { type: 'exact', value: '%' }, []],
];

async function listed(fx: Fixtures, jobs: Map<number, Description>, expression: Record<string, unknown>): Promise<Description[]> {
  const res = await fx.call('POST', '/v1/jobs/list', {
    json: { expressions: [{ ...expression, field: 'description', case_insensitive: true }] },
  });
  expect(res.status, res.text).toBe(200);
  return (res.body as { pk: number }[]).map((job) => jobs.get(job.pk)!);
}

async function checkStore(fx: Fixtures): Promise<void> {
  const jobs = new Map<number, Description>(DESCRIPTIONS.map((description) => [fx.job({ description }), description]));
  const failures: string[] = [];
  for (const [what, expression, expected] of CASES) {
    const found = await listed(fx, jobs, expression);
    if (JSON.stringify(found) !== JSON.stringify(expected)) failures.push(`${what}: ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`);
  }
  // Inverted, a search lists the rest.
  const rest = await listed(fx, jobs, { type: 'contains', sub_string: 'İ', invert: true });
  if (rest.length !== DESCRIPTIONS.length - 1 || rest.includes('İstanbul')) failures.push(`inverted contains İ: ${JSON.stringify(rest)}`);
  // The user the server makes is 'admin': neither 'İ' nor 'ı' in the search finds it.
  for (const [sub_string, expected] of [['ADMİN', []], ['ADMIN', ['admin']], ['admın', []]] as const) {
    const users = await fx.call('POST', '/v1/users/list', { json: { expressions: [{ type: 'contains', field: 'username', sub_string, case_insensitive: true }] } });
    expect(users.status, users.text).toBe(200);
    const names = (users.body as { username: string }[]).map((u) => u.username);
    if (JSON.stringify(names) !== JSON.stringify(expected)) failures.push(`users contains ${sub_string}: ${JSON.stringify(names)}`);
  }
  expect(failures).toEqual([]);
}

describe('case-insensitive list filters fold ASCII letters only', () => {
  it('on SQLite', async () => {
    await checkStore(await startWithFixtures({ databaseUrl: undefined }));
  });

  it('on PostgreSQL, whatever the database locale', async () => {
    // A UTF-8 character type, under which PostgreSQL's own lower() and upper() fold beyond ASCII.
    const databaseUrl = await cluster.get().createDatabase(`case_folding_${++databases}`, { lcCtype: 'C.UTF-8' });
    await checkStore(await startWithFixtures({ databaseUrl }));
  });
});
