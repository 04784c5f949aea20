/**
 * The job log, uploaded as the output `log` of type `BLOB`: the child's console output (stdout and
 * stderr as they were printed), as plain text — the same bytes the live log streamed, byte for byte.
 * A console output beyond the cap keeps its head and its tail with a line saying what was dropped
 * between them, on the grid of `protocol/live-log.ts`, so that it still equals what the server kept
 * of the live log.
 *
 * The reference uploads `log` as `Compressed<JSON, N>`: a zip holding a JSON array of timestamped
 * entries, rewritten in full after every message. We keep the child's own bytes
 * instead: they are already on disk, stream to the server without being held in memory, and are
 * readable with any tool. The price is that a reader expecting the reference's zipped JSON (its web
 * UI's log viewer) gets plain text instead; docs/COMPATIBILITY.md says so.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { droppedMarker, droppedRange, logGrid } from '../../protocol/live-log.js';
import type { JobDir } from '../child/job-dir.js';
import { LOG_OUTPUT_NAME } from './names.js';
import type { OutputFile } from './scan.js';

/** The type of the `log` output. */
export const LOG_OUTPUT_TYPE = 'BLOB';

/**
 * Write `log.txt` in the job directory from `console.log` (kept whole up to `maxBytes`, else head,
 * marker line and tail), hashing as it goes, and return it as the `log` output. A missing console
 * output counts as empty.
 */
export async function writeJobLog(dir: JobDir, maxBytes: number): Promise<OutputFile> {
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(dir.logPath);
  // Listened to from the start: an error while nothing waits on the stream (the path cannot be opened,
  // the job's code having left a directory there; a full disk) would otherwise be an 'error' event
  // without a listener, which ends the agent — and, as recovery writes the log again, every start.
  // The writes and the end below report it, so the job goes up without its `log` output.
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => {});
  const write = async (chunk: Buffer | string) => {
    hash.update(chunk);
    size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (!out.write(chunk)) await Promise.race([new Promise<void>((resolve) => out.once('drain', resolve)), failed]);
  };
  try {
    const length = await sizeOf(dir.consolePath);
    const grid = logGrid(maxBytes);
    const dropped = droppedRange(grid, length);
    if (dropped === undefined) {
      await copyRange(dir.consolePath, 0, length, write);
    } else {
      await copyRange(dir.consolePath, 0, dropped.from, write);
      await write(droppedMarker(dropped.from, dropped.to, maxBytes));
      await copyRange(dir.consolePath, dropped.to, length, write);
    }
  } finally {
    out.end();
    await finished(out);
  }
  return { name: LOG_OUTPUT_NAME, type: LOG_OUTPUT_TYPE, path: dir.logPath, size, sha256: hash.digest('hex') };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Copy bytes `[from, to)` of `path` (read in 1 MiB pieces). */
async function copyRange(path: string, from: number, to: number, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  if (to <= from) return;
  for await (const chunk of createReadStream(path, { start: from, end: to - 1, highWaterMark: 1024 * 1024 })) await write(chunk as Buffer);
}
