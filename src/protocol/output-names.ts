/**
 * Which names may be output names. An output name is one URL path segment of
 * `POST /v1/jobs/{pk}/outputs/{name}/{type}` and a file name on the agent's disk, so anything that
 * could be read as a path, or that breaks a header or a log line, is refused.
 */

/** The longest output name (the reference's model field: 200 characters). */
export const MAX_OUTPUT_NAME_LENGTH = 200;

/** Why `name` cannot be an output name, or `undefined` when it can. */
export function outputNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return 'is a path component';
  if (name.length > MAX_OUTPUT_NAME_LENGTH) return `is longer than ${MAX_OUTPUT_NAME_LENGTH} characters`;
  if (/[/\\]/.test(name)) return 'contains a path separator';
  // Control characters (NUL, newline, …) break headers and logs, and the server refuses NUL.
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'contains a control character';
  return undefined;
}

/**
 * The map of output names an `outputs` parameter's value declares: an object, or (as the agent also
 * reads it) a string holding one in JSON; undefined for anything else.
 */
export function outputsMap(value: unknown): Record<string, unknown> | undefined {
  let declared = value;
  if (typeof declared === 'string') {
    try {
      declared = JSON.parse(declared) as unknown;
    } catch {
      return undefined;
    }
  }
  return typeof declared === 'object' && declared !== null && !Array.isArray(declared) ? (declared as Record<string, unknown>) : undefined;
}
