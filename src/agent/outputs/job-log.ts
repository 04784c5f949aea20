/**
 * The job log, uploaded as the output `log` of type `BLOB`: the child's stdout, then its stderr under
 * a separator line, as plain text.
 *
 * The reference uploads `log` as `Compressed<JSON, N>`: a zip holding a JSON array of timestamped
 * entries, rewritten in full after every message (launcher.md §1.15). We keep the child's own bytes
 * instead: they are already on disk, stream to the server without being held in memory, and are
 * readable with any tool. The price is that a reader expecting the reference's zipped JSON (its web
 * UI's log viewer) gets plain text instead; this belongs in docs/COMPATIBILITY.md.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { JobDir } from '../child/job-dir.js';
import { LOG_OUTPUT_NAME } from './names.js';
import type { OutputFile } from './scan.js';

/** The type of the `log` output. */
export const LOG_OUTPUT_TYPE = 'BLOB';

/** The line between stdout and stderr in the combined log. */
export const STDERR_SEPARATOR = '===== stderr =====\n';

/**
 * Write `log.txt` in the job directory from `stdout.log` and `stderr.log`, hashing as it goes, and
 * return it as the `log` output. Missing logs count as empty.
 */
export async function writeJobLog(dir: JobDir): Promise<OutputFile> {
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(dir.logPath);
  const write = async (chunk: Buffer | string) => {
    hash.update(chunk);
    size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  try {
    let lastByte: number | undefined;
    for await (const chunk of readIfExists(dir.stdoutPath)) {
      await write(chunk);
      lastByte = chunk[chunk.length - 1];
    }
    if ((await sizeOf(dir.stderrPath)) > 0) {
      if (lastByte !== undefined && lastByte !== 0x0a) await write('\n');
      await write(STDERR_SEPARATOR);
      for await (const chunk of readIfExists(dir.stderrPath)) await write(chunk);
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

async function* readIfExists(path: string): AsyncGenerator<Buffer> {
  if ((await sizeOf(path)) === 0) return;
  for await (const chunk of createReadStream(path)) yield chunk as Buffer;
}
