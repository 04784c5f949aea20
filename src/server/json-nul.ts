/**
 * Where a JSON value holds a NUL character (U+0000), in a string or in a key. PostgreSQL keeps no NUL
 * in `text` or `jsonb` (it refuses the statement), so text holding one could be stored on SQLite and
 * not on PostgreSQL, and looked up on one and not the other. The server refuses it in every JSON body
 * instead, on both stores, as the reference's serializers do ("Null characters are not allowed").
 */

/**
 * The first string or key in `value` that holds a NUL, for a message (`field "description"`,
 * `field "expressions[0].value"`, `key "a\u0000"`), or undefined when none does.
 */
export function nulCharacterPath(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, '']];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, path] = next;
    if (typeof item === 'string') {
      if (item.includes('\u0000')) return path === '' ? 'string' : `field ${JSON.stringify(path)}`;
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
      if (key.includes('\u0000')) return `key ${JSON.stringify(keyPath)}`;
      pending.push([(item as Record<string, unknown>)[key], keyPath]);
    }
  }
  return undefined;
}
