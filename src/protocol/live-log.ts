/**
 * The live job log extension, shared by the agent (which appends), the server (which stores and
 * serves) and the readers (CLI, dashboard). docs/COMPATIBILITY.md ("Live job logs") describes the
 * routes; this module holds what both sides must compute identically.
 *
 * Offsets are byte offsets into the job's console output (`console.log` in the job directory: stdout
 * and stderr as a terminal shows them). A log larger than its cap `max_bytes` keeps its head and its
 * tail, on a fixed grid so that the server's kept bytes and the agent's final `log` output agree
 * byte for byte without talking about it:
 *
 * ```
 * [0, head)                        always kept (head = max_bytes / 2)
 * [head + k·cell, head + (k+1)·cell)  tail cells (cell = max_bytes / 4); only the cell holding the
 *                                  last byte and the one before it are kept, the rest is dropped
 * ```
 *
 * So a capped log keeps at most `max_bytes` bytes, and the final `log` output of a job whose console
 * output is `n` bytes long is `[0, head)`, the {@link droppedMarker} line, then `[keptFrom(n), n)`.
 */

/** The route under a job: `/v1/jobs/{pk}/log`. */
export const LIVE_LOG_SEGMENT = 'log';

/** Smallest cap a log may declare (a smaller one would make the grid meaningless). */
export const MIN_LOG_MAX_BYTES = 64 * 1024;

/** Largest append body the server accepts, and what the agent sends at most in one request. */
export const MAX_APPEND_BYTES = 1024 * 1024;

/** Response headers of `GET /v1/jobs/{pk}/log`. */
export const LOG_HEADERS = {
  /** The offset of the first byte of the body (greater than asked for when a dropped range was skipped). */
  offset: 'x-ufdl-log-offset',
  /** The log's length: the offset after its last byte. */
  length: 'x-ufdl-log-length',
  /** `true` once the job has ended: no byte will be appended any more. */
  complete: 'x-ufdl-log-complete',
  /** `from-to` when the log has dropped a range (capped), absent otherwise. */
  dropped: 'x-ufdl-log-dropped',
  /** The cap the log was begun with. */
  maxBytes: 'x-ufdl-log-max-bytes',
} as const;

/** The grid of a cap. */
export interface LogGrid {
  maxBytes: number;
  headBytes: number;
  cellBytes: number;
}

export function logGrid(maxBytes: number): LogGrid {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_LOG_MAX_BYTES) {
    throw new RangeError(`a log cap must be an integer of at least ${MIN_LOG_MAX_BYTES} bytes, got ${String(maxBytes)}`);
  }
  return { maxBytes, headBytes: Math.floor(maxBytes / 2), cellBytes: Math.floor(maxBytes / 4) };
}

/** The index of the tail cell holding byte `offset` (offset ≥ head). */
export function cellIndex(grid: LogGrid, offset: number): number {
  return Math.floor((offset - grid.headBytes) / grid.cellBytes);
}

/** Where tail cell `k` begins. */
export function cellStart(grid: LogGrid, k: number): number {
  return grid.headBytes + k * grid.cellBytes;
}

/**
 * The first kept offset after the head for a log of `length` bytes: equal to `head` while nothing
 * is dropped, else the start of the cell before the one holding the last byte.
 */
export function keptFrom(grid: LogGrid, length: number): number {
  if (length <= grid.headBytes) return grid.headBytes;
  const last = cellIndex(grid, length - 1);
  return last <= 1 ? grid.headBytes : cellStart(grid, last - 1);
}

/** The range `[from, to)` a log of `length` bytes has dropped, or undefined. */
export function droppedRange(grid: LogGrid, length: number): { from: number; to: number } | undefined {
  const to = keptFrom(grid, length);
  return to > grid.headBytes ? { from: grid.headBytes, to } : undefined;
}

/**
 * The line that stands for a dropped range, in the final `log` output and wherever a reader prints a
 * capped log. It starts with a newline because the head may end in the middle of a line.
 */
export function droppedMarker(from: number, to: number, maxBytes: number): string {
  return `\n[ufdl-agent: ${to - from} bytes of output dropped here (bytes ${from} to ${to}); the log keeps its first and last bytes within logs.max_bytes = ${maxBytes}]\n`;
}

/** Control frames of the follow web-socket (`GET /v1/jobs/{pk}/log` upgraded); log bytes are binary frames. */
export type LogFrame =
  /** First frame: where the binary frames that follow begin, and the state of the log. */
  | { type: 'start'; offset: number; length: number; complete: boolean; max_bytes: number | null }
  /** The bytes `[from, to)` were dropped (capped log); the next binary frame begins at `to`. */
  | { type: 'dropped'; from: number; to: number }
  /** A new attempt of the job began: the log starts again at offset 0. */
  | { type: 'reset' }
  /** The job has ended and every byte was sent; the server closes the socket. */
  | { type: 'end'; length: number };

/** The body of a gap answer (416): the server's length, from which the appender resends. */
export interface LogGapBody {
  detail: string;
  length: number;
}
