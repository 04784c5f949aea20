/**
 * Compiles a list filter specification (protocol/filter.ts) into a parameterised SQL WHERE and
 * ORDER BY for one resource.
 *
 * Each resource declares the fields a filter may name (its `FieldTable`): an unknown field is a 400
 * naming it, where the reference answers 500 (bug B14). Dotted names follow relations (`template.name`);
 * in `order_by` both `template.name` and Django's `template__name` are accepted.
 */
import { UfdlError } from '../../protocol/errors.js';
import { filterLimitProblem, type Expression, type FieldExpression, type FilterSpec, type OrderBy } from '../../protocol/filter.js';

export type FieldKind = 'int' | 'real' | 'text' | 'bool' | 'time';

export interface FieldDef {
  /** A SQL expression over the resource's table (and any joins the resource's query makes). */
  sql: string;
  kind: FieldKind;
}

export type FieldTable = Readonly<Record<string, FieldDef>>;

export interface CompiledFilter {
  where: string;
  params: unknown[];
  orderBy: string;
}

export function compileFilter(
  spec: FilterSpec,
  fields: FieldTable,
  options: { softDeleteColumn?: string; defaultOrder: string },
): CompiledFilter {
  const overLimit = filterLimitProblem(spec);
  if (overLimit !== undefined) throw new UfdlError('UFDL_ERR_REQ_OVER_LIMIT', `Filter too large: ${overLimit}`);
  const params: unknown[] = [];
  const clauses: string[] = [];
  for (const expression of spec.expressions ?? []) clauses.push(compileExpression(expression, fields, params));
  if (options.softDeleteColumn && !spec.include_inactive) clauses.push(`${options.softDeleteColumn} IS NULL`);
  const where = clauses.length === 0 ? '1 = 1' : clauses.map((c) => `(${c})`).join(' AND ');
  const orderParts = (spec.order_by ?? []).map((o) => compileOrder(o, fields));
  orderParts.push(options.defaultOrder);
  return { where, params, orderBy: orderParts.join(', ') };
}

function lookup(fields: FieldTable, name: string, where: 'filter' | 'order_by'): FieldDef {
  const normalised = name.replaceAll('__', '.');
  const def = Object.hasOwn(fields, normalised) ? fields[normalised] : undefined;
  if (!def) {
    throw new UfdlError(
      'UFDL_ERR_REQ_FILTER_FIELD',
      `Unknown field '${name}' in ${where}; known fields: ${Object.keys(fields).sort().join(', ')}`,
    );
  }
  return def;
}

/**
 * `negated`: whether the inversions above this expression are odd. A term under an odd number of
 * inversions is false, not null, where its field is null, as Django writes a negated lookup on a
 * column that can be null (`NOT (lookup AND column IS NOT NULL)`): an inverted `contains` lists the
 * rows without the field, where `NOT (null)` left them out. Under an even number the term is as it
 * is: a null there is no match, either way.
 */
function compileExpression(expression: Expression, fields: FieldTable, params: unknown[], negated = false): string {
  // `IS NOT NULL` rather than `NOT (… IS NULL)`: the same, but the form that lets SQLite use the
  // partial indexes of `db.ts` (it matches index conditions term by term).
  if (expression.type === 'isnull' && expression.invert) return `${lookup(fields, expression.field, 'filter').sql} IS NOT NULL`;
  const inverted = negated !== (expression.invert === true);
  let sql: string;
  if (expression.type === 'and' || expression.type === 'or') {
    const joiner = expression.type === 'and' ? ' AND ' : ' OR ';
    sql = expression.sub_expressions.map((sub) => `(${compileExpression(sub, fields, params, inverted)})`).join(joiner);
  } else {
    sql = compileField(expression, fields, params);
    // An `isnull` term is never null.
    if (inverted && expression.type !== 'isnull') sql = `COALESCE((${sql}), FALSE)`;
  }
  return expression.invert ? `NOT (${sql})` : sql;
}

function compileField(expression: FieldExpression, fields: FieldTable, params: unknown[]): string {
  const def = lookup(fields, expression.field, 'filter');
  switch (expression.type) {
    case 'isnull':
      return `${def.sql} IS NULL`;
    case 'exact': {
      const value = checkedValue(expression, def);
      // A number no whole-number column holds (1.5, 1e20) equals no row; PostgreSQL would refuse to
      // read it as a bigint where SQLite compares it and finds nothing.
      if (def.kind === 'int' && typeof value === 'number' && !isInt8(value)) return '1 = 0';
      // Case means something only in text: PostgreSQL has no lower() of a number or a flag.
      if (expression.case_insensitive && typeof value === 'string' && isText(def)) {
        params.push(value);
        return `${def.sql} = ? COLLATE NOCASE`;
      }
      params.push(value);
      return `${def.sql} IS NOT NULL AND ${def.sql} = ?`;
    }
    case 'contains': {
      params.push(expression.sub_string);
      // A substring search (instr, PostgreSQL's strpos), never a LIKE pattern: SQLite's LIKE steps
      // through the pattern at every position of the text, so a 10,000-character search in a 1 MB
      // description held the server for seconds, per term. Case-insensitive: both sides lowered
      // (SQLite's lower() folds ASCII only, as its LIKE did).
      if (expression.case_insensitive) return `instr(lower(${textOf(def)}), lower(?)) > 0`;
      return `instr(CAST(${def.sql} AS TEXT), ?) > 0`;
    }
    case 'compare': {
      let value = checkedValue(expression, def);
      if (def.kind === 'int' && typeof value === 'number' && !isInt8(value)) {
        // The same comparison with the nearest whole number on the side that keeps its meaning
        // (`n > 1.5` is `n > 1`, `n >= 1.5` is `n >= 2`), or, beyond bigint's range, a constant:
        // what SQLite answers by comparing the number itself, PostgreSQL answers without refusing it.
        const bound = expression.operator === '>' || expression.operator === '<=' ? Math.floor(value) : Math.ceil(value);
        const below = expression.operator === '<' || expression.operator === '<=';
        if (bound >= INT8_END) return below ? `${def.sql} IS NOT NULL` : '1 = 0';
        if (bound <= -INT8_END) return below ? '1 = 0' : `${def.sql} IS NOT NULL`;
        value = bound;
      }
      params.push(value);
      return `${def.sql} IS NOT NULL AND ${def.sql} ${expression.operator} ?`;
    }
  }
}

function compileOrder(order: OrderBy, fields: FieldTable): string {
  const def = lookup(fields, order.field, 'order_by');
  const ascending = order.ascending !== false;
  // Without `nulls_first` the database's default places nulls, and the two stores differ: SQLite
  // (the reference's database) sorts them first going up and last going down, PostgreSQL the other
  // way. Said out loud, SQLite's order on both (a no-op for SQLite). A primary key is never null, and
  // PostgreSQL reads `pk ASC`, but not `pk ASC NULLS FIRST`, off the key's index: left unsaid.
  const nullsFirst = order.nulls_first ?? (/(^|\.)pk$/.test(def.sql) ? undefined : ascending);
  const nulls = nullsFirst === undefined ? '' : nullsFirst ? ' NULLS FIRST' : ' NULLS LAST';
  return `${def.sql} ${ascending ? 'ASC' : 'DESC'}${nulls}`;
}

/**
 * 2^63: whole-number fields are PostgreSQL `bigint`s, which hold -2^63 … 2^63 - 1. The bounds are
 * exclusive here: a number is bound as its shortest decimal text, and -2^63's
 * (`-9223372036854776000`) is beyond the range.
 */
const INT8_END = 2 ** 63;

/** Whether `value` is a whole number a `bigint` holds, so that PostgreSQL reads it as one. */
function isInt8(value: number): boolean {
  return Number.isInteger(value) && value > -INT8_END && value < INT8_END;
}

/**
 * The value of an `exact` or `compare` term, coerced to the field's kind; a number field compared
 * with text that is no number is the client's mistake, refused on both stores alike (SQLite compared
 * the text and matched nothing or everything, PostgreSQL refused to read it as a number).
 */
function checkedValue(expression: FieldExpression & { value: string | number | boolean }, def: FieldDef): unknown {
  const value = coerce(expression.value, def);
  if ((def.kind === 'int' || def.kind === 'real') && typeof value !== 'number') {
    throw new UfdlError(
      'UFDL_ERR_REQ_FILTER_VALUE',
      `Filter value ${JSON.stringify(expression.value)} for field '${expression.field}' is not a number; '${expression.field}' holds numbers`,
    );
  }
  return value;
}

/** A decimal number as text, spaces around allowed (as the reference's int() and float() read it). */
const DECIMAL = /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s*$/i;

/** Values are compared in the column's own representation (booleans are 0/1, times ISO strings). */
export function coerce(value: string | number | boolean, def: FieldDef): unknown {
  switch (def.kind) {
    case 'bool':
      return value === true || value === 'true' || value === 1 || value === '1' ? 1 : 0;
    case 'int':
    case 'real':
      if (typeof value === 'boolean') return value ? 1 : 0;
      // Decimal text only: `Number` also reads "0x10", "0b1" and "0o7", which the reference's int() refuses.
      if (typeof value === 'string' && DECIMAL.test(value) && Number.isFinite(Number(value))) return Number(value);
      return value;
    case 'time':
      if (typeof value === 'string') {
        const ms = Date.parse(value);
        if (Number.isFinite(ms)) return new Date(ms).toISOString();
      }
      // SQLite binds no booleans; as text, `true` matches no time, as on PostgreSQL.
      return typeof value === 'boolean' ? String(value) : value;
    case 'text':
      return typeof value === 'string' ? value : String(value);
  }
}

/** Whether the field's SQL is text in both stores (times are ISO strings). */
function isText(def: FieldDef): boolean {
  return def.kind === 'text' || def.kind === 'time';
}

/** The field as text, for the searches that only work on text. */
function textOf(def: FieldDef): string {
  return isText(def) ? def.sql : `CAST(${def.sql} AS TEXT)`;
}
