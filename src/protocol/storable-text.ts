/**
 * Text a job produced, made into text the server stores: a NUL (U+0000) and a lone UTF-16 surrogate
 * become U+FFFD. The server refuses a JSON body holding either (no store keeps them alike), and a
 * refused finish would leave the job running on the server; a job's output may hold anything, and a
 * line cut at a length may split a surrogate pair. Used by the client for what it sends of a job's
 * own text: a finish's error and progress data.
 */

/** `text` with every NUL and lone surrogate replaced by U+FFFD. */
export function storableText(text: string): string {
  // With the u flag a surrogate pair is one code point; only a lone surrogate is \p{Cs}.
  return text.replaceAll('\u0000', '\uFFFD').replace(/\p{Cs}/gu, '\uFFFD');
}

/** `value` with {@link storableText} applied to every string and key, at any depth. */
export function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(storableJson);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[storableText(key)] = storableJson(item);
  return out;
}
