/**
 * Content-addressed output storage on local disk: `<root>/<h[0:3]>/<h[3:6]>/<h>` where h is the
 * SHA-256 of the content (ufdl-server.md §6.1). Uploads stream to a temporary file while being
 * hashed and counted, and are renamed into place; nothing is ever held whole in memory. Paths are
 * derived only from the hash, so no client input reaches the file system.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UfdlError } from '../protocol/errors.js';

/**
 * Chunk size for blob reads and the write buffer for blob writes. Node's defaults (64 KiB reads,
 * 16 KiB write buffer) cost one thread-pool round trip per 16–64 KiB, which on a busy machine
 * dominates a large transfer; 1 MiB batches them (writes are coalesced with writev).
 */
const IO_CHUNK_BYTES = 1024 * 1024;

export interface StoredBlob {
  sha256: string;
  size: number;
}

export class BlobStore {
  readonly #root: string;
  readonly #tmp: string;

  constructor(root: string) {
    this.#root = root;
    this.#tmp = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.#tmp, { recursive: true });
    // Partial uploads of a previous run are garbage: nothing refers to them.
    await rm(this.#tmp, { recursive: true, force: true });
    await mkdir(this.#tmp, { recursive: true });
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.#root, sha256.slice(0, 3), sha256.slice(3, 6), sha256);
  }

  /** Stream `source` to disk, refusing more than `maxBytes` (413). */
  async put(source: Readable, maxBytes: number): Promise<StoredBlob> {
    const tmpFile = join(this.#tmp, randomUUID());
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        size += chunk.length;
        if (size > maxBytes) {
          callback(new UfdlError('UFDL_ERR_OUTPUT_TOO_LARGE', `Output exceeds the maximum size of ${maxBytes} bytes`));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      // `flush`: the bytes are on disk before the stream reports its end, so the output row that the
      // caller commits next (and answers for only once the commit is durable) never points at a file
      // a power cut could empty.
      await pipeline(source, meter, createWriteStream(tmpFile, { flags: 'wx', highWaterMark: IO_CHUNK_BYTES, flush: true }));
      const sha256 = hash.digest('hex');
      const finalPath = this.pathOf(sha256);
      const firstCreated = await mkdir(dirname(finalPath), { recursive: true });
      // Identical content is stored once; renaming over an existing identical file is harmless.
      await rename(tmpFile, finalPath);
      // Make the rename, and any directory mkdir created, durable too.
      await syncDirectory(dirname(finalPath));
      if (firstCreated !== undefined) {
        for (let dir = dirname(dirname(finalPath)); dir.length >= this.#root.length; dir = dirname(dir)) await syncDirectory(dir);
      }
      return { sha256, size };
    } catch (err) {
      await rm(tmpFile, { force: true });
      throw err;
    }
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await stat(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  open(sha256: string): ReadStream {
    return createReadStream(this.pathOf(sha256), { highWaterMark: IO_CHUNK_BYTES });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
