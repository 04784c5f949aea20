/**
 * Reading a large file once, fast: in 1 MiB pieces, into two buffers refilled in turn, with its
 * SHA-256 taken on the way. Uploads stream their body this way (and learn the digest of exactly the
 * bytes they sent), and a file is hashed this way when nothing is sent.
 *
 * Files are opened with `O_NOFOLLOW` and must be regular files: the agent reads files a job left, and
 * a job must never make it read (and upload) a file outside its directory by swapping a file for a
 * symbolic link after it was listed.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Read size. Node's default of 64 KiB costs a thread-pool round trip (and, for uploads, a trip through
 * the stream machinery) per 64 KiB, which on a busy machine nearly doubled the time to hash or send a
 * large output (bench/outputs.bench.mjs).
 */
export const FILE_CHUNK_BYTES = 1024 * 1024;

/** The size and SHA-256 of a file's bytes. */
export interface FileDigest {
  size: number;
  /** Lower-case hex. */
  sha256: string;
}

/**
 * Open `path` for reading, refusing a symbolic link (`O_NOFOLLOW`) and anything but a regular file.
 * Returns the handle and the size the open file has now.
 * @throws Error (ELOOP for a symbolic link) when `path` is not a regular file
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new TypeError(`${path} is not a regular file`);
    return { handle, size: info.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * A file's bytes, once through, hashed as they go by: `chunks()` yields each piece after the next
 * one's read has begun (in the thread pool). A buffer is refilled only two pieces later, once its
 * consumer asked for the piece after it. (A new buffer per read, as a file stream makes, costs the
 * kernel a page fault for every 4 KiB it copies in: half again the CPU.)
 *
 * Each piece is hashed before it is handed on, so that once the last byte has been handed on the
 * digest is complete: a server may answer an upload as soon as it has the declared length, before the
 * sender asks for more.
 */
export class HashingReader {
  readonly #handle: FileHandle;
  readonly #limit: number;
  readonly #hash: Hash = createHash('sha256');
  #size = 0;
  #atEnd = false;

  /** `limit`: read at most this many bytes (an upload's declared length); else to the end of the file. */
  constructor(handle: FileHandle, limit = Number.POSITIVE_INFINITY) {
    this.#handle = handle;
    this.#limit = limit;
  }

  async *chunks(): AsyncGenerator<Buffer> {
    const buffers = [Buffer.allocUnsafeSlow(FILE_CHUNK_BYTES), Buffer.allocUnsafeSlow(FILE_CHUNK_BYTES)];
    let next = 0;
    // From the start at explicit offsets, so that one open file can be sent again (a retry after 401).
    let offset = 0;
    const readAt = (buffer: Buffer) => this.#handle.read(buffer, 0, Math.min(FILE_CHUNK_BYTES, this.#limit - offset), offset);
    let reading = readAt(buffers[next]!);
    try {
      for (;;) {
        const { bytesRead, buffer } = await reading;
        if (bytesRead === 0) break;
        offset += bytesRead;
        next ^= 1;
        if (offset < this.#limit) reading = readAt(buffers[next]!);
        const chunk = buffer.subarray(0, bytesRead);
        this.#hash.update(chunk);
        this.#size += bytesRead;
        yield chunk;
        if (offset >= this.#limit) break;
      }
      this.#atEnd = true;
    } finally {
      // Stopped half-way (the consumer failed): the read ahead is no longer wanted.
      reading.catch(() => {});
    }
  }

  /**
   * The digest of every byte handed on, once they are all of the file (or of `limit`); else
   * undefined.
   */
  digest(): FileDigest | undefined {
    const whole = Number.isFinite(this.#limit) ? this.#size === this.#limit : this.#atEnd;
    return whole ? { size: this.#size, sha256: this.#hash.copy().digest('hex') } : undefined;
  }
}

/**
 * Hash a regular file (see {@link openRegularFile}), streamed: it may be gigabytes.
 * @throws Error when `path` is a symbolic link or not a regular file
 */
export async function hashFile(path: string): Promise<FileDigest> {
  const { handle } = await openRegularFile(path);
  try {
    const reader = new HashingReader(handle);
    for await (const chunk of reader.chunks()) void chunk;
    return reader.digest()!;
  } finally {
    await handle.close();
  }
}
