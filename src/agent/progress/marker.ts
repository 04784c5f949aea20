/**
 * The progress marker line of the child's contract, usable from any language with a plain print:
 *
 * ```
 * UFDL-PROGRESS 0.25
 * UFDL-PROGRESS 0.5 {"comment": "epoch 5 of 10", "loss": 0.31}
 * ```
 *
 * The marker starts the line; the value is a decimal in [0, 1] (`0`, `1`, `.5`, `1e-3` are fine; the
 * agent formats it for the server); the optional rest is a JSON object sent as the progress body.
 * Any other line, or a marker line with a bad value or bad JSON, is not a progress report.
 */
import { parseProgress } from '../../protocol/progress.js';
import type { ProgressUpdate } from './update.js';

export const PROGRESS_MARKER = 'UFDL-PROGRESS';

const PREFIX = `${PROGRESS_MARKER} `;

/** The update a marker line reports, or `undefined` for any other line. */
export function parseMarkerLine(line: string): ProgressUpdate | undefined {
  if (!line.startsWith(PREFIX)) return undefined;
  const rest = line.slice(PREFIX.length).trim();
  const space = rest.search(/\s/);
  const valueText = space < 0 ? rest : rest.slice(0, space);
  const progress = parseProgress(valueText);
  if (progress === undefined) return undefined;
  if (space < 0) return { progress, data: {} };
  let data: unknown;
  try {
    data = JSON.parse(rest.slice(space + 1));
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  return { progress, data: data as Record<string, unknown> };
}
