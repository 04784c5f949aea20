/**
 * Size and SHA-256 of a file, streamed: the journal records both for every output, and an
 * output may be gigabytes, so it is never read into memory.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * Read size. Node's default of 64 KiB costs a thread-pool round trip per 64 KiB, which on a busy
 * machine nearly doubles the time to hash a large output (bench/outputs.bench.mjs).
 */
const READ_CHUNK_BYTES = 1024 * 1024;

/** What {@link hashFile} measures. */
export interface FileDigest {
  size: number;
  /** Lower-case hex. */
  sha256: string;
}

/**
 * Hash a regular file. `O_NOFOLLOW`: a symbolic link is refused even if it replaced the file after
 * it was listed, so a job can never make the agent read (and upload) a file outside its directory.
 * @throws Error when `path` is a symbolic link or not a regular file
 */
export async function hashFile(path: string): Promise<FileDigest> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (!(await handle.stat()).isFile()) throw new Error(`${path} is not a regular file`);
    const hash = createHash('sha256');
    // Two buffers, refilled in turn: the next chunk is read (in the thread pool) while this one is
    // hashed. (A new buffer per read, as a file stream makes, costs the kernel a page fault per 4 KiB
    // it copies in: half again the CPU of hashing a large output.)
    const buffers = [Buffer.allocUnsafeSlow(READ_CHUNK_BYTES), Buffer.allocUnsafeSlow(READ_CHUNK_BYTES)];
    let next = 0;
    let reading = handle.read(buffers[next]!, 0, READ_CHUNK_BYTES, null);
    let size = 0;
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      next ^= 1;
      reading = handle.read(buffers[next]!, 0, READ_CHUNK_BYTES, null);
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { size, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}
