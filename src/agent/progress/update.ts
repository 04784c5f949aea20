/** The unit the progress modules trade in. */

/** One progress observation: a value in [0, 1] and the JSON object sent as the progress body. */
export interface ProgressUpdate {
  progress: number;
  data: Record<string, unknown>;
}

/**
 * The reference worker's parser contract: given one output line and the last progress,
 * return a new observation, or `undefined` when the line says nothing about progress.
 */
export type ProgressParser = (line: string, last: number) => ProgressUpdate | undefined;
