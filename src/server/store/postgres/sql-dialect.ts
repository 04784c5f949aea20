/**
 * The store's SQL, written for SQLite, as PostgreSQL must read it.
 *
 * Most statements are the same in both dialects: the schemas agree column for column
 * (`schema.ts`), timestamps are ISO text and flags 0/1 integers in both. What differs is mechanical
 * and translated here, once per statement text (the result is cached by the caller):
 *
 * | SQLite | PostgreSQL |
 * |---|---|
 * | `?` placeholders | `$1`, `$2`, … |
 * | `INSERT OR IGNORE INTO …` | `INSERT INTO … ON CONFLICT DO NOTHING` |
 * | `a IS NOT ?` / `a IS ?` | `a IS DISTINCT FROM $n` / `a IS NOT DISTINCT FROM $n` |
 * | `SELECT value FROM json_each(?)` (a JSON array of pks) | the array's elements as `bigint`s |
 * | `lower(x)` (SQLite's folds ASCII letters only) | `lower((x) COLLATE "C")` (ASCII only too, whatever the database's locale) |
 * | `x = ? COLLATE NOCASE` (ASCII letters folded) | `lower(x COLLATE "C") = lower($n COLLATE "C")` |
 * | `LIKE` (ASCII case-insensitive in SQLite) | `ILIKE` |
 * | `instr(text, part)` | `strpos(text, part)` |
 * | `lastInsertRowid` of an `INSERT` | `RETURNING pk` appended, for tables that have a `pk` |
 *
 * Statements whose meaning the rules above cannot carry are written in both dialects side by side
 * where they are built (see {@link dialectOf}'s callers). Placeholders inside quoted literals are left
 * alone; the store writes no `?` inside a literal, but a translation that touched one would change a
 * value, so the scanner skips quotes rather than trusting that.
 */
import { PG_MIGRATIONS } from './schema.js';

export interface TranslatedStatement {
  text: string;
  /** The statement is an `INSERT` into a table with a `pk`, and returns it (SQLite's `lastInsertRowid`). */
  returnsPk: boolean;
}

/** Tables whose first column is an identity `pk`, read from the PostgreSQL schema itself. */
const TABLES_WITH_PK: ReadonlySet<string> = new Set(
  [...PG_MIGRATIONS.join('\n').matchAll(/CREATE TABLE (\w+)\s*\(\s*pk\s+BIGINT/gi)].map((m) => m[1]!.toLowerCase()),
);

export function translateToPostgres(sql: string): TranslatedStatement {
  let text = sql;
  const ignore = /\bINSERT\s+OR\s+IGNORE\s+INTO\b/i.test(text);
  if (ignore) text = text.replace(/\bINSERT\s+OR\s+IGNORE\s+INTO\b/i, 'INSERT INTO');
  text = text
    .replace(/SELECT\s+value\s+FROM\s+json_each\(\?\)/gi, 'SELECT value::bigint FROM jsonb_array_elements_text(?::jsonb) AS elements(value)')
    // Case folded as SQLite folds it, ASCII letters only: PostgreSQL's lower() folds by the database's
    // character type, under which a UTF-8 one made 'İ' an 'i' (a search for 'İ' found 'admin') and 'é'
    // an 'É' on this store alone. Under the C collation it folds ASCII only. (Nested parentheses one
    // level deep: `lower(CAST(x AS TEXT))`.)
    .replace(/\blower\(((?:[^()]|\([^()]*\))*)\)/gi, 'lower(($1) COLLATE "C")')
    .replace(/([\w."]+(?:\([^()]*\))?)\s*=\s*\?\s+COLLATE\s+NOCASE/gi, 'lower($1 COLLATE "C") = lower(? COLLATE "C")')
    .replace(/\bIS\s+NOT\s+\?/gi, 'IS DISTINCT FROM ?')
    .replace(/\bIS\s+\?/gi, 'IS NOT DISTINCT FROM ?')
    .replace(/\bLIKE\b/gi, 'ILIKE')
    .replace(/\binstr\(/gi, 'strpos(');
  const insertInto = /^\s*INSERT\s+INTO\s+"?(\w+)"?/i.exec(text)?.[1]?.toLowerCase();
  const returnsPk = insertInto !== undefined && TABLES_WITH_PK.has(insertInto) && !/\bRETURNING\b/i.test(text);
  text = text.trimEnd().replace(/;$/, '');
  if (ignore) text += ' ON CONFLICT DO NOTHING';
  if (returnsPk) text += ' RETURNING pk';
  return { text: numberPlaceholders(text), returnsPk };
}

/** `?` → `$1`, `$2`, … outside single- and double-quoted text. */
function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}
