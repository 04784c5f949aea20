/**
 * Progress values in the URL of `POST /v1/jobs/{pk}/progress/{p}`.
 *
 * The reference route only matches `0.<digits>` and `1.<zeros>` (bug B10, docs/COMPATIBILITY.md), so
 * the client always formats that way. The embedded server is liberal: any plain decimal in [0, 1].
 */

/** Format a value for the reference's progress route: `0.000`–`0.999`, or `1.0`. Clamps to [0, 1]. */
export function formatProgress(value: number): string {
  if (!Number.isFinite(value) || value <= 0) return '0.0';
  if (value >= 1) return '1.0';
  // Three decimals are enough for a progress bar; values that round up to 1 are reported as 0.999 so
  // that completion is only ever claimed explicitly.
  const fixed = Math.min(Math.round(value * 1000), 999);
  return `0.${String(fixed).padStart(3, '0')}`;
}

const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * Parse a progress URL segment. Returns the value, or `undefined` when the segment is not a decimal
 * number in [0, 1] (the server answers 400 then).
 */
export function parseProgress(segment: string): number | undefined {
  if (!DECIMAL.test(segment)) return undefined;
  const value = Number(segment);
  if (!Number.isFinite(value) || value < 0 || value > 1) return undefined;
  return value;
}

/**
 * Body keys the reference's progress route cannot take: it passes the body's keys as keyword arguments
 * beside its own `node` and `progress`, so either key makes it answer 500 (bug B11).
 */
export const RESERVED_PROGRESS_KEYS: readonly string[] = ['node', 'progress'];

/** The key a progress object that holds a reserved key is nested under, for such a server. */
export const NESTED_PROGRESS_KEY = 'metadata';

/**
 * The progress body for a server that may break on {@link RESERVED_PROGRESS_KEYS}: the object as it
 * is, or — when it holds a reserved key — nested as `{"metadata": object}`, so that the report lands
 * and watchers still see every key.
 */
export function progressBodyForReference(data: Record<string, unknown>): Record<string, unknown> {
  return RESERVED_PROGRESS_KEYS.some((key) => Object.hasOwn(data, key)) ? { [NESTED_PROGRESS_KEY]: data } : data;
}
