/**
 * Content-addressed output storage on local disk: `<root>/<h[0:3]>/<h[3:6]>/<h>` where h is the
 * SHA-256 of the content, as the reference lays out its files. Uploads stream to a temporary file while being
 * hashed and counted, and are renamed into place; nothing larger than {@link INLINE_MAX_BYTES} is
 * ever held whole in memory, and what is not larger is kept in the database instead of a file. Paths
 * are derived only from the hash, so no client input reaches the file system.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
  /**
   * The bytes themselves when they are at most {@link INLINE_MAX_BYTES}: such a blob is kept in the
   * database (the caller stores it with the output's row, in the same durable commit), not as a file.
   */
  content?: Buffer;
}

/** A partial upload this old at start-up is a dead run's; another replica's in flight is younger. */
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

/**
 * Outputs up to this size (logs, metrics, small models) are kept in the database row rather than in
 * a file: a file costs nine disk operations (create, write, sync, close, mkdir, rename and a synced
 * directory), about a tenth of the server's CPU in a lifecycle of small jobs, where the row's commit
 * is made durable anyway.
 */
export const INLINE_MAX_BYTES = 64 * 1024;

export class BlobStore {
  readonly #root: string;
  readonly #tmp: string;

  constructor(root: string) {
    this.#root = root;
    this.#tmp = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.#tmp, { recursive: true });
    // Partial uploads of a dead run are garbage: nothing refers to them. Only old ones are removed,
    // and never the directory: replicas share it, and removing it under another replica failed that
    // replica's own start (its mkdir found the directory gone) and its uploads in flight.
    const now = Date.now();
    for (const name of await readdir(this.#tmp)) {
      const path = join(this.#tmp, name);
      const info = await stat(path).catch(() => undefined);
      if (info !== undefined && now - info.mtimeMs > STALE_UPLOAD_MS) await rm(path, { recursive: true, force: true });
    }
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.#root, sha256.slice(0, 3), sha256.slice(3, 6), sha256);
  }

  /**
   * Take in `source`, hashing and counting it and refusing more than `maxBytes` (413): up to
   * {@link INLINE_MAX_BYTES} it is returned as `content`; beyond, it is written to a temporary file
   * in batches of {@link IO_CHUNK_BYTES} (one disk operation each) and renamed into place.
   */
  async put(source: AsyncIterable<Buffer>, maxBytes: number): Promise<StoredBlob> {
    const tmpFile = join(this.#tmp, randomUUID());
    const hash = createHash('sha256');
    let size = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let file: FileHandle | null = null;
    const writeBatch = async (handle: FileHandle) => {
      const { bytesWritten } = await handle.writev(batch);
      if (bytesWritten !== batchBytes) throw new Error(`short write to ${tmpFile}: ${bytesWritten} of ${batchBytes} bytes`);
      batch = [];
      batchBytes = 0;
    };
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > maxBytes) throw new UfdlError('UFDL_ERR_OUTPUT_TOO_LARGE', `Output exceeds the maximum size of ${maxBytes} bytes`);
        hash.update(chunk);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= IO_CHUNK_BYTES || (file === null && size > INLINE_MAX_BYTES)) {
          file ??= await open(tmpFile, 'wx');
          await writeBatch(file);
        }
      }
      const sha256 = hash.digest('hex');
      if (file === null) return { sha256, size, content: Buffer.concat(batch, batchBytes) };
      if (batchBytes > 0) await writeBatch(file);
      // The bytes are on disk before the output row that the caller commits next (and answers for
      // only once the commit is durable) can point at them: a power cut must not empty the file.
      await file.datasync();
      await file.close();
      file = null;
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
      await file?.close().catch(() => {});
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
