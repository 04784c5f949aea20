/**
 * The list filter specification: the body of every `POST …/list`, as the reference reads it.
 *
 * The schema is strict like the reference's (unknown keys are a 400). Field names are checked by the
 * server against the resource's own field table, not here.
 */
import { z } from 'zod';

const fieldBase = {
  field: z.string().min(1),
  invert: z.boolean().optional(),
};

export const ExactSchema = z.strictObject({
  type: z.literal('exact'),
  ...fieldBase,
  value: z.union([z.string(), z.number(), z.boolean()]),
  case_insensitive: z.boolean().optional(),
});

export const ContainsSchema = z.strictObject({
  type: z.literal('contains'),
  ...fieldBase,
  sub_string: z.string().min(1),
  case_insensitive: z.boolean().optional(),
});

export const IsNullSchema = z.strictObject({
  type: z.literal('isnull'),
  ...fieldBase,
});

export const CompareSchema = z.strictObject({
  type: z.literal('compare'),
  ...fieldBase,
  operator: z.enum(['<', '>', '>=', '<=']),
  value: z.union([z.string(), z.number()]),
});

export const FieldExpressionSchema = z.discriminatedUnion('type', [
  ExactSchema,
  ContainsSchema,
  IsNullSchema,
  CompareSchema,
]);

export const AndSchema = z.strictObject({
  type: z.literal('and'),
  sub_expressions: z.array(FieldExpressionSchema).min(2),
  invert: z.boolean().optional(),
});

export const OrSchema = z.strictObject({
  type: z.literal('or'),
  sub_expressions: z.array(z.union([AndSchema, FieldExpressionSchema])).min(2),
  invert: z.boolean().optional(),
});

export const ExpressionSchema = z.union([OrSchema, AndSchema, FieldExpressionSchema]);

export const OrderBySchema = z.strictObject({
  field: z.string().min(1),
  ascending: z.boolean().optional(),
  nulls_first: z.boolean().optional(),
});

export const FilterSpecSchema = z.strictObject({
  expressions: z.array(ExpressionSchema).optional(),
  order_by: z.array(OrderBySchema).optional(),
  include_inactive: z.boolean().optional(),
});

export type FieldExpression = z.infer<typeof FieldExpressionSchema>;
export type AndExpression = z.infer<typeof AndSchema>;
export type OrExpression = z.infer<typeof OrSchema>;
export type Expression = z.infer<typeof ExpressionSchema>;
export type OrderBy = z.infer<typeof OrderBySchema>;
export type FilterSpec = z.infer<typeof FilterSpecSchema>;

/**
 * The reference worker's poll filter: not started, no error, not acquired,
 * workable template. We add `order_by pk` so every node sees the queue in the same order.
 */
export function pollFilter(): FilterSpec {
  return {
    expressions: [
      {
        type: 'and',
        sub_expressions: [
          { type: 'isnull', field: 'start_time' },
          { type: 'isnull', field: 'error_reason' },
          { type: 'isnull', field: 'node' },
          { type: 'isnull', field: 'template.workabletemplate', invert: true },
        ],
      },
    ],
    order_by: [{ field: 'pk', ascending: true }],
  };
}

/**
 * The poll filter less the jobs `excluded` (those the node skips): a `pk ≠ n` term each, in its
 * `and`. Sent to a server with wake-up only: there a node whose queue head is all skipped jobs gets an
 * empty answer and waits to be woken, instead of being answered at once with jobs it will not take;
 * and the server asks the database once per job for every node's filter, whatever each excludes.
 */
export function pollFilterExcluding(excluded: readonly number[]): FilterSpec {
  const filter = pollFilter();
  const and = filter.expressions![0] as Extract<Expression, { type: 'and' }>;
  for (const pk of excluded) and.sub_expressions.push({ type: 'exact', field: 'pk', value: pk, invert: true });
  return filter;
}

/** The reference worker's node lookup by identity. */
export function nodeIdentityFilter(ip: string, index: number): FilterSpec {
  return {
    expressions: [
      {
        type: 'and',
        sub_expressions: [
          { type: 'exact', field: 'ip', value: ip },
          { type: 'exact', field: 'index', value: index },
        ],
      },
    ],
  };
}

/**
 * What one list filter may ask for. A database has its own limits (SQLite: expression trees 1,000
 * deep, 2,000 ORDER BY terms, LIKE patterns of 50,000 bytes); a request beyond them would fail inside
 * the query, so the server refuses it first with a 400 naming the limit.
 */
export const FILTER_LIMITS = {
  /** Field expressions in the whole filter, nested ones included. */
  terms: 500,
  /** Entries of `order_by`. */
  orderBy: 100,
  /**
   * Characters of a `contains` sub-string or a string value; and of all the filter's `contains`
   * sub-strings together, since each is searched for in every row's text (a search costs up to its
   * length times the text's).
   */
  stringLength: 10_000,
} as const;

/** Every field expression of `spec`, nested ones included. */
function* fieldExpressions(spec: FilterSpec): Generator<FieldExpression> {
  const pending: Expression[] = [...(spec.expressions ?? [])];
  for (let expression = pending.pop(); expression !== undefined; expression = pending.pop()) {
    if (expression.type === 'and' || expression.type === 'or') pending.push(...expression.sub_expressions);
    else yield expression;
  }
}

/**
 * What asking whether one row is in `spec`'s result costs, in the units of {@link FILTER_LIMITS}:
 * its field expressions, and the characters its `contains` sub-strings search for (a search costs
 * up to its length times the row's text: 10,000 characters in a 1 MB description take a tenth of a
 * second).
 */
export function filterCost(spec: FilterSpec): { terms: number; searched: number } {
  let terms = 0;
  let searched = 0;
  for (const expression of fieldExpressions(spec)) {
    terms++;
    if (expression.type === 'contains') searched += expression.sub_string.length;
  }
  return { terms, searched };
}

/**
 * Whether `spec` searches text: a `contains` term, or a case-insensitive `exact` on a string. Such a
 * term costs each row up to its text's length (a 1 MB description), where every other term is a
 * comparison of a few bytes or an index lookup; the server runs these lists off its event loop,
 * under a time limit, and does not hold them waiting (`X-UFDL-Wait`).
 */
export function searchesText(spec: FilterSpec): boolean {
  for (const expression of fieldExpressions(spec)) {
    if (expression.type === 'contains') return true;
    if (expression.type === 'exact' && expression.case_insensitive === true && typeof expression.value === 'string') return true;
  }
  return false;
}

/** Why `spec` exceeds {@link FILTER_LIMITS}, or `undefined`. */
export function filterLimitProblem(spec: FilterSpec): string | undefined {
  const orderBy = spec.order_by?.length ?? 0;
  if (orderBy > FILTER_LIMITS.orderBy) return `order_by has ${orderBy} entries; at most ${FILTER_LIMITS.orderBy} are allowed`;
  for (const expression of fieldExpressions(spec)) {
    const text = expression.type === 'contains' ? expression.sub_string : 'value' in expression ? expression.value : undefined;
    if (typeof text === 'string' && text.length > FILTER_LIMITS.stringLength) {
      return `a ${expression.type} expression on '${expression.field}' has a string of ${text.length} characters; at most ${FILTER_LIMITS.stringLength} are allowed`;
    }
  }
  const { terms, searched } = filterCost(spec);
  if (searched > FILTER_LIMITS.stringLength) {
    return `the filter's contains strings have ${searched} characters in all; at most ${FILTER_LIMITS.stringLength} are allowed`;
  }
  if (terms > FILTER_LIMITS.terms) return `the filter has ${terms} expressions; at most ${FILTER_LIMITS.terms} are allowed`;
  return undefined;
}
