/**
 * Text in a JSON body that no store keeps as it was sent, found in a string or in a key:
 *
 * - a NUL character (U+0000): PostgreSQL keeps none in `text` or `jsonb` (it refuses the statement),
 *   so text holding one could be stored on SQLite and not on PostgreSQL, and looked up on one and not
 *   the other. The reference's serializers refuse it too ("Null characters are not allowed").
 * - a lone UTF-16 surrogate (JSON's `"\ud800"`): no Unicode text. Each store writes it differently
 *   (SQLite as invalid UTF-8 read back as three U+FFFD, PostgreSQL as one U+FFFD; `jsonb` refuses it),
 *   so the same request stored different data.
 *
 * The server refuses both in every JSON body, on both stores alike.
 */

/**
 * What in `value` no store keeps, for a message: `field "description" holds a NUL character …`,
 * `key "a\u0000" holds …`; undefined when everything does.
 */
export function unstorableText(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, path] = next;
    if (typeof item === 'string') {
      const problem = problemOf(item);
      if (problem !== undefined) return `${path === '' ? 'string' : `field ${JSON.stringify(path)}`} ${problem}`;
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], `${path}[${i}]`]);
      continue;
    }
    const keys = Object.keys(item);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const keyPath = path === '' ? key : `${path}.${key}`;
      const problem = problemOf(key);
      if (problem !== undefined) return `key ${JSON.stringify(keyPath)} ${problem}`;
      pending.push([(item as Record<string, unknown>)[key], keyPath]);
    }
  }
  return undefined;
}

function problemOf(text: string): string | undefined {
  if (text.includes('\u0000')) return 'holds a NUL character (\\u0000); text may not contain NUL characters';
  if (/\p{Cs}/u.test(text)) return 'holds a lone UTF-16 surrogate (such as \\ud800); text must be valid Unicode';
  return undefined;
}
