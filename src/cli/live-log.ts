/**
 * Reading a job's live log for the CLI (`logs`, `submit --wait --logs`): the whole log so far
 * (piece by piece, with a marker line where a capped log dropped bytes), or the log followed live
 * until the job ends. Both write the same bytes the job's final `log` output holds.
 */
import type { LogFollow, UfdlClient } from '../client/index.js';
import { droppedMarker } from '../protocol/live-log.js';

/** Where log bytes go (a stream such as `process.stdout`). */
export interface LogSink {
  write(chunk: Buffer | string): unknown;
}

/** Write job `pk`'s live log from `offset` to its current end; returns the offset after it. */
export async function printLogSoFar(client: UfdlClient, pk: number, sink: LogSink, offset = 0): Promise<{ offset: number; complete: boolean }> {
  for (;;) {
    const piece = await client.readLog(pk, offset);
    if (piece.offset > offset) sink.write(droppedMarker(offset, piece.offset, piece.maxBytes ?? 0));
    if (piece.bytes.length > 0) sink.write(piece.bytes);
    offset = piece.offset + piece.bytes.length;
    if (piece.bytes.length === 0 || offset >= piece.length) return { offset, complete: piece.complete };
  }
}

/**
 * Follow job `pk`'s live log from `offset` until the job has ended and every byte was written.
 * Reconnects after a dropped connection from the last byte written (no byte twice, none missed).
 * Rejects when the server refuses (not allowed, no such job).
 */
export function followLogTo(client: UfdlClient, pk: number, sink: LogSink, offset = 0, onProblem?: (message: string) => void): { done: Promise<void>; close(): void } {
  let follow: LogFollow | undefined;
  const done = new Promise<void>((resolve, reject) => {
    follow = client.followLog(pk, offset, {
      onBytes: (bytes) => sink.write(bytes),
      onDropped: (from, to, maxBytes) => sink.write(droppedMarker(from, to, maxBytes ?? 0)),
      onReset: () => onProblem?.(`job ${pk} started again; its log begins anew`),
      onEnd: () => resolve(),
      onError: (error, fatal) => {
        if (fatal) reject(error);
        else onProblem?.(`log connection lost (${error.message}); resuming`);
      },
    });
  });
  return { done, close: () => follow?.close() };
}
