/**
 * An inverted filter term lists the rows whose field is null, as the reference does. The reference
 * turns `invert` into Django's `~Q(…)`, and Django writes a negated lookup on a column that can be
 * null as `NOT (lookup AND column IS NOT NULL)`: a job that has not ended is "not ended before March",
 * a job without an error "does not contain 'memory'". Plain SQL's `NOT (lookup)` is null there, and
 * the row was left out. Under two inversions a term is as it is (Django adds the test only where the
 * inversions above a term are odd). Runs on each store the suite runs on.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';

async function listed(fx: Fixtures, expression: Record<string, unknown>): Promise<number[]> {
  const res = await fx.call('POST', '/v1/jobs/list', { json: { expressions: [expression] } });
  expect(res.status, res.text).toBe(200);
  return (res.body as { pk: number }[]).map((job) => job.pk);
}

describe('inverted list filters', () => {
  it('list the rows whose field is null, under an odd number of inversions', async () => {
    const fx = await startWithFixtures();
    const [failed, ended, running] = [fx.job(), fx.job(), fx.job()];
    const end = fx.db.prepare('UPDATE jobs SET start_time = ?, end_time = ?, error_reason = ? WHERE pk = ?');
    end.run('2025-12-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'Out of memory', failed);
    end.run('2025-12-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z', null, ended);

    const endedBeforeMarch = { type: 'compare', field: 'end_time', operator: '<', value: '2026-03-01T00:00:00.000Z' };
    const mentionsMemory = { type: 'contains', field: 'error_reason', sub_string: 'memory' };
    // Each [filter, the jobs the reference lists].
    const cases: [string, Record<string, unknown>, number[]][] = [
      ['not ended before March', { ...endedBeforeMarch, invert: true }, [ended, running]],
      ["error without 'memory'", { ...mentionsMemory, invert: true }, [ended, running]],
      ["error not 'out of memory' in any case", { type: 'exact', field: 'error_reason', value: 'out of memory', case_insensitive: true, invert: true }, [ended, running]],
      ["error not 'Out of memory'", { type: 'exact', field: 'error_reason', value: 'Out of memory', invert: true }, [ended, running]],
      [
        "not (ended after 2025 and an error with 'memory')",
        { type: 'and', sub_expressions: [{ type: 'compare', field: 'end_time', operator: '>', value: '2025-06-01T00:00:00.000Z' }, mentionsMemory], invert: true },
        [ended, running],
      ],
      ["not (an error without 'memory'): inverted twice, as it is", { type: 'or', sub_expressions: [{ ...mentionsMemory, invert: true }, { type: 'exact', field: 'pk', value: 0 }], invert: true }, [failed]],
      ['ended before March, not inverted', endedBeforeMarch, [failed]],
    ];
    const wrong: string[] = [];
    for (const [what, expression, expected] of cases) {
      const found = await listed(fx, expression);
      if (JSON.stringify(found) !== JSON.stringify(expected)) wrong.push(`${what}: ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`);
    }
    expect(wrong).toEqual([]);
  });
});
