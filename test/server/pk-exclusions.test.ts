/**
 * Job list filters split into a base and the pks they exclude, for the wake-up hub: the base's
 * result less the excluded pks is exactly the filter's result (checked against the list's own SQL on
 * a real database), filters that differ only in their exclusions share one base, and anything that
 * is not plainly `pk ≠ n` stays in the base.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter, type Expression, type FieldExpression, type FilterSpec } from '../../src/protocol/filter.js';
import { JOB_FIELDS } from '../../src/server/store/job-fields.js';
import { prepareJobList } from '../../src/server/store/lists.js';
import { splitPkExclusions } from '../../src/server/store/pk-exclusions.js';
import { storeContext } from './support/database.js';

const notPk = (value: string | number | boolean, field = 'pk'): FieldExpression => ({ type: 'exact', field, value, invert: true });
const isPk = (value: number): FieldExpression => ({ type: 'exact', field: 'pk', value });
const withPoll = (...more: Expression[]): FilterSpec => ({ ...pollFilter(), expressions: [...pollFilter().expressions!, ...more] });

/** A queue of ten jobs: waiting ones, and some that a poll filter leaves out (started, acquired, errored, deleted). */
async function queue() {
  const { ctx } = await storeContext();
  const insert = ctx.db.prepare(
    `INSERT INTO jobs (template, description, start_time, node, error_reason, creation_time, deletion_time)
     VALUES (1, ?, ?, NULL, ?, '2020-01-01T00:00:00.000Z', ?)`,
  );
  const pks: number[] = [];
  for (let i = 1; i <= 10; i++) {
    const started = i === 3 ? '2020-01-02T00:00:00.000Z' : null;
    const errored = i === 5 ? 'failed' : null;
    const deleted = i === 7 ? '2020-01-03T00:00:00.000Z' : null;
    pks.push(Number(insert.run(`job ${i}`, started, errored, deleted).lastInsertRowid));
  }
  return { db: ctx.db, pks };
}

describe('pk exclusions of a job list filter', () => {
  it('leave the result of every filter shape unchanged: base less exclusions is the list', async () => {
    const { db, pks } = await queue();
    const specs: FilterSpec[] = [
      pollFilter(),
      withPoll(notPk(2), notPk(4)),
      withPoll(notPk('6'), notPk(true)),
      withPoll({ type: 'or', invert: true, sub_expressions: [isPk(1), isPk(8), isPk(99)] }),
      { expressions: [{ type: 'and', sub_expressions: [notPk(2), { type: 'isnull', field: 'node' }, notPk(9, 'id')] }] },
      { expressions: [{ type: 'and', sub_expressions: [notPk(2), notPk(4)] }] },
      { expressions: [notPk(1)], include_inactive: true },
      // Not exclusions: kept in the base, and still right. (Text that is no number, `notPk('two')`,
      // is refused before it gets here: UFDL_ERR_REQ_FILTER_VALUE.)
      withPoll(notPk(2.5), notPk(1e20)),
      withPoll({ type: 'and', invert: true, sub_expressions: [isPk(1), { type: 'isnull', field: 'node' }] }),
      withPoll({ type: 'or', invert: true, sub_expressions: [isPk(1), { type: 'exact', field: 'description', value: 'job 2' }] }),
      withPoll({ type: 'or', sub_expressions: [notPk(1), notPk(2)] }),
      withPoll({ type: 'exact', field: 'pk', value: 4 }),
    ];
    for (const spec of specs) {
      const list = prepareJobList(db, spec);
      const listed = list.run().map((job) => job.pk);
      const matched = pks.filter((pk) => list.matches(pk));
      expect(matched, JSON.stringify(spec)).toEqual(listed);
      // And the hub's own reading: the base asked in SQL, the exclusions in memory.
      expect(pks.filter((pk) => list.base.matches(pk) && !list.excluded.has(pk)), JSON.stringify(spec)).toEqual(listed);
    }
  });

  it('let filters that differ only in the pks they exclude share one base', async () => {
    const { db } = await queue();
    const plain = prepareJobList(db, pollFilter());
    const skipping = [
      withPoll(notPk(2)),
      withPoll(notPk(4), notPk(2)),
      withPoll({ type: 'or', invert: true, sub_expressions: [isPk(2), isPk(4)] }),
      { ...pollFilter(), expressions: [{ type: 'and', sub_expressions: [...(pollFilter().expressions![0] as { sub_expressions: FieldExpression[] }).sub_expressions, notPk(2)] }] } as FilterSpec,
    ].map((spec) => prepareJobList(db, spec));
    for (const list of skipping) expect(list.base.key).toBe(plain.base.key);
    expect(skipping.map((list) => [...list.excluded].sort())).toEqual([[2], [2, 4], [2, 4], [2]]);
    // The same pks in another order are the same filter, with one queue.
    expect(skipping[1]!.key).toBe(skipping[2]!.key);
    expect(new Set(skipping.map((list) => list.key)).size).toBe(2);
    expect(plain.key).toBe(plain.base.key);
  });

  it('keep anything but a plain pk ≠ n in the base', () => {
    const kept = (spec: FilterSpec) => splitPkExclusions(spec, JOB_FIELDS, 'jobs.pk');
    expect(kept(withPoll(notPk('two'))).excluded).toEqual([]);
    expect(kept(withPoll({ type: 'exact', field: 'template', value: 3, invert: true })).excluded).toEqual([]);
    expect(kept(withPoll({ type: 'compare', field: 'pk', operator: '<', value: 3 })).excluded).toEqual([]);
    expect(kept({ expressions: [{ type: 'and', invert: true, sub_expressions: [notPk(1), notPk(2)] }] }).excluded).toEqual([]);
    // An `and` left with one term is that term; with none, nothing.
    expect(kept({ expressions: [{ type: 'and', sub_expressions: [notPk(1), { type: 'isnull', field: 'node' }] }] }).base.expressions).toEqual([
      { type: 'isnull', field: 'node' },
    ]);
    expect(kept({ expressions: [{ type: 'and', sub_expressions: [notPk(1), notPk(2)] }] }).base.expressions).toEqual([]);
  });
});
