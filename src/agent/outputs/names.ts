/**
 * Which file names may become output names. An output name is one URL path segment of
 * `POST /v1/jobs/{pk}/outputs/{name}/{type}` (launcher.md §1.15) and a file name on the server's disk,
 * so anything that could be read as a path, or that the server refuses, is skipped with a reason.
 */

/** The server's limit on output names (the reference's model field: 200 characters). */
export const MAX_OUTPUT_NAME_LENGTH = 200;

/** The output name of the job log, which no file of the child may take. */
export const LOG_OUTPUT_NAME = 'log';

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
