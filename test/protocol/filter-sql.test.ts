import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { UfdlError } from '../../src/protocol/errors.js';
import { FilterSpecSchema, pollFilter, pollFilterExcluding, searchesText, type FilterSpec } from '../../src/protocol/filter.js';
import { compileFilter, type FieldTable } from '../../src/server/store/filter-sql.js';

const FIELDS: FieldTable = {
  pk: { sql: 'pk', kind: 'int' },
  name: { sql: 'name', kind: 'text' },
  node: { sql: 'node', kind: 'int' },
  start_time: { sql: 'start_time', kind: 'time' },
  error_reason: { sql: 'error_reason', kind: 'text' },
  'template.workabletemplate': { sql: 'template', kind: 'int' },
  'template.name': { sql: 'tname', kind: 'text' },
};

function rows(spec: unknown): number[] {
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE t (pk INTEGER PRIMARY KEY, name TEXT, node INTEGER, start_time TEXT, error_reason TEXT,
           template INTEGER, tname TEXT, deletion_time TEXT)`);
  const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  insert.run(1, 'alpha', null, null, null, 1, 'b-template', null);
  insert.run(2, 'Beta', 7, '2026-01-01T00:00:00.000Z', null, 1, 'a-template', null);
  insert.run(3, 'gamma', null, null, 'Cancelled', 1, 'a-template', null);
  insert.run(4, 'delta', null, null, null, 1, 'c-template', '2026-01-02T00:00:00.000Z');
  const compiled = compileFilter(FilterSpecSchema.parse(spec), FIELDS, { softDeleteColumn: 'deletion_time', defaultOrder: 'pk ASC' });
  return (db.prepare(`SELECT pk FROM t WHERE ${compiled.where} ORDER BY ${compiled.orderBy}`).all(...compiled.params) as { pk: number }[]).map(
    (r) => r.pk,
  );
}

describe('filter compilation', () => {
  it("selects exactly the reference worker's queue with its poll filter", () => {
    expect(rows(pollFilter())).toEqual([1]);
  });

  it('hides soft-deleted rows unless include_inactive', () => {
    expect(rows({})).toEqual([1, 2, 3]);
    expect(rows({ include_inactive: true })).toEqual([1, 2, 3, 4]);
  });

  it('supports exact, contains, compare, isnull, invert, and, or', () => {
    expect(rows({ expressions: [{ type: 'exact', field: 'name', value: 'beta', case_insensitive: true }] })).toEqual([2]);
    expect(rows({ expressions: [{ type: 'exact', field: 'name', value: 'beta' }] })).toEqual([]);
    expect(rows({ expressions: [{ type: 'contains', field: 'name', sub_string: 'mm' }] })).toEqual([3]);
    expect(rows({ expressions: [{ type: 'contains', field: 'name', sub_string: 'A', case_insensitive: true }] })).toEqual([1, 2, 3]);
    expect(rows({ expressions: [{ type: 'compare', field: 'pk', operator: '>=', value: 2 }] })).toEqual([2, 3]);
    expect(rows({ expressions: [{ type: 'isnull', field: 'node', invert: true }] })).toEqual([2]);
    expect(
      rows({
        expressions: [
          { type: 'or', sub_expressions: [{ type: 'exact', field: 'pk', value: 1 }, { type: 'exact', field: 'pk', value: 3 }] },
        ],
      }),
    ).toEqual([1, 3]);
  });

  it('orders by dotted and Django-style related fields', () => {
    expect(rows({ order_by: [{ field: 'template.name' }] })).toEqual([2, 3, 1]);
    expect(rows({ order_by: [{ field: 'template__name', ascending: false }] })).toEqual([1, 2, 3]);
  });

  it('treats a LIKE wildcard in contains as a literal character', () => {
    expect(rows({ expressions: [{ type: 'contains', field: 'name', sub_string: '%', case_insensitive: true }] })).toEqual([]);
  });

  it('rejects unknown fields with a 400 naming the field (bug B14)', () => {
    for (const spec of [
      { expressions: [{ type: 'isnull', field: 'is_cancelled' }] },
      { order_by: [{ field: 'nope' }] },
      { expressions: [{ type: 'exact', field: '__proto__', value: 1 }] },
    ]) {
      try {
        rows(spec);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(UfdlError);
        expect((err as UfdlError).statusCode).toBe(400);
        expect((err as UfdlError).message).toMatch(/Unknown field/);
      }
    }
  });

  it('rejects malformed specs at the schema (strict objects, nested and/or)', () => {
    expect(FilterSpecSchema.safeParse({ bogus: 1 }).success).toBe(false);
    expect(FilterSpecSchema.safeParse({ expressions: [{ type: 'is_null', field: 'x' }] }).success).toBe(false);
    expect(FilterSpecSchema.safeParse({ expressions: [{ type: 'and', sub_expressions: [{ type: 'isnull', field: 'x' }] }] }).success).toBe(false);
  });
});

describe('searchesText', () => {
  it('is false for the poll filters of the reference worker and of our agent, which the server holds waiting', () => {
    expect(searchesText(pollFilter())).toBe(false);
    expect(searchesText(pollFilterExcluding([3, 5]))).toBe(false);
  });

  it('is true for a contains term or a case-insensitive exact on a string, however deep', () => {
    expect(searchesText({ expressions: [{ type: 'contains', field: 'description', sub_string: 'x' }] })).toBe(true);
    expect(searchesText({ expressions: [{ type: 'exact', field: 'name', value: 'X', case_insensitive: true }] })).toBe(true);
    expect(searchesText({ expressions: [{ type: 'exact', field: 'name', value: 'X' }] })).toBe(false);
    const nested: FilterSpec = {
      expressions: [
        {
          type: 'or',
          sub_expressions: [
            { type: 'isnull', field: 'node' },
            { type: 'and', sub_expressions: [{ type: 'isnull', field: 'node' }, { type: 'contains', field: 'description', sub_string: 'x', invert: true }] },
          ],
        },
      ],
    };
    expect(searchesText(nested)).toBe(true);
  });
});
