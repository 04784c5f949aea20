/**
 * A list filter split into a *base* and the pks it excludes, for the wake-up hub
 * (`wake-up/wake-hub.ts`): nodes that skip jobs they cannot run may send the poll filter plus one
 * `pk ≠ n` term per skipped job, each node its own list. Asked per acquirable job, every distinct
 * list would cost one query; split, the hub asks the database about the shared base once and checks
 * each filter's exclusions in memory.
 *
 * An exclusion is a conjunct of the whole filter (its expressions are ANDed) of one of two shapes:
 *
 * - `{"type": "exact", "field": "pk", "value": n, "invert": true}` (`pk ≠ n`; `id` names the same
 *   field), at the top level or inside a top-level `and` that is not inverted;
 * - `{"type": "or", "invert": true, "sub_expressions": [<exact pk = n>, …]}` (`pk ∉ {…}`), every
 *   sub-expression an exact pk term that is not inverted.
 *
 * A pk is never null, so `NOT (pk IS NOT NULL AND pk = n)`, what the compiler makes of the first
 * shape, is exactly `pk ≠ n`: the base's result less the excluded pks is the filter's result. Values
 * are read as the compiler reads them (`"7"` is 7); one that is not a whole number stays in the base,
 * where SQL answers it as before. Anything else stays in the base too.
 */
import type { Expression, FieldExpression, FilterSpec } from '../../protocol/filter.js';
import { coerce, type FieldTable } from './filter-sql.js';

export interface SplitFilter {
  /** The filter without its pk exclusions; `spec` itself when it has none. */
  base: FilterSpec;
  /** The pks the filter excludes from its base's result, in the order written. */
  excluded: number[];
}

/** Split `spec` for a resource whose pk is the SQL column `pkSql` among `fields`. */
export function splitPkExclusions(spec: FilterSpec, fields: FieldTable, pkSql: string): SplitFilter {
  const excluded: number[] = [];
  const kept: Expression[] = [];
  /** The pk `expression` names with `pk = n` (inversion aside), or undefined. */
  const pkEquals = (expression: Expression): number | undefined => {
    if (expression.type !== 'exact') return undefined;
    const name = expression.field.replaceAll('__', '.');
    const def = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (def === undefined || def.sql !== pkSql) return undefined;
    const value = coerce(expression.value, def);
    return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
  };
  const exclusion = (expression: FieldExpression): number | undefined => (expression.invert === true ? pkEquals(expression) : undefined);
  for (const expression of spec.expressions ?? []) {
    if (expression.type === 'and' && expression.invert !== true) {
      const rest: FieldExpression[] = [];
      for (const sub of expression.sub_expressions) {
        const pk = exclusion(sub);
        if (pk === undefined) rest.push(sub);
        else excluded.push(pk);
      }
      // An `and` of one is that one; of none, nothing.
      if (rest.length >= 2) kept.push(rest.length === expression.sub_expressions.length ? expression : { ...expression, sub_expressions: rest });
      else if (rest.length === 1) kept.push(rest[0]!);
      continue;
    }
    if (expression.type === 'or' && expression.invert === true) {
      const pks = expression.sub_expressions.map((sub) => (sub.type !== 'and' && sub.invert !== true ? pkEquals(sub) : undefined));
      if (pks.every((pk) => pk !== undefined)) {
        excluded.push(...(pks as number[]));
        continue;
      }
    }
    if (expression.type !== 'and' && expression.type !== 'or') {
      const pk = exclusion(expression);
      if (pk !== undefined) {
        excluded.push(pk);
        continue;
      }
    }
    kept.push(expression);
  }
  if (excluded.length === 0) return { base: spec, excluded };
  return { base: { ...spec, expressions: kept }, excluded };
}
