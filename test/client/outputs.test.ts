/**
 * Outputs as files through the real embedded server: a ~20 MiB file streamed up from disk and back
 * down (by name and type, and by output pk) byte-identical; a zero-byte output; a missing file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ClientError } from '../../src/client/errors.js';
import { startWorld } from './setup.js';
import { tempDir } from '../helpers/temp-dir.js';

const SIZE = 20 * 1024 * 1024 + 12_345;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function randomFile(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  let left = size;
  await pipeline(
    (async function* () {
      while (left > 0) {
        const n = Math.min(left, 1024 * 1024);
        left -= n;
        yield randomBytes(n);
      }
    })(),
    out,
  );
}

async function startedJob(serverOptions: Parameters<typeof startWorld>[0] = {}) {
  const world = await startWorld(serverOptions);
  const worker = await world.worker();
  await world.register(worker);
  const pk = await world.createJob();
  await worker.acquireJob(pk);
  await worker.startJob(pk);
  const dir = await tempDir('ufdl-client-out-');
  return { world, worker, pk, dir };
}

describe('outputs as files', () => {
  it('should stream a ~20 MiB output up and down byte-identical, by name and type and by pk', async () => {
    const { worker, pk, dir } = await startedJob();
    const source = join(dir, 'model.bin');
    await randomFile(source, SIZE);
    const type = 'Compressed<JSON, 8>';
    const { output, sent, serverSha256 } = await worker.uploadOutput(pk, 'model', type, source);
    expect(output).toMatchObject({ job: pk, name: 'model', type });
    // Hashed as it was sent (the file is read once), and the server says it stored the same bytes.
    const expected = await sha256(source);
    expect(sent).toEqual({ size: SIZE, sha256: expected });
    expect(serverSha256).toBe(expected);

    const byName = join(dir, 'by-name.bin');
    const result = await worker.downloadOutput(pk, 'model', type, byName);
    expect(result).toEqual({ path: byName, bytes: SIZE });
    const byPk = join(dir, 'by-pk.bin');
    await worker.downloadJobOutputByPk(output.pk!, byPk);

    expect(await sha256(byName)).toBe(expected);
    expect(await sha256(byPk)).toBe(expected);
    // Only the three files: no temporary file left behind.
    expect((await readdir(dir)).sort()).toEqual(['by-name.bin', 'by-pk.bin', 'model.bin']);
  });

  it('should get duplicate-output, not a broken pipe, when a large upload is refused early', async () => {
    const { worker, pk, dir } = await startedJob();
    const source = join(dir, 'big');
    await randomFile(source, 8 * 1024 * 1024);
    await worker.uploadOutput(pk, 'big', 'BLOB', source);
    const err = await worker.uploadOutput(pk, 'big', 'BLOB', source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).kind).toBe('duplicate-output');
  });

  it('should get too-large for an output over the server maximum', async () => {
    const { worker, pk, dir } = await startedJob({ maxOutputBytes: 1024 * 1024 });
    const source = join(dir, 'big');
    await randomFile(source, 4 * 1024 * 1024);
    const err = await worker.uploadOutput(pk, 'big', 'BLOB', source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).kind).toBe('too-large');
  });

  it('should upload and download a zero-byte output (B12)', async () => {
    const { worker, pk, dir } = await startedJob();
    await writeFile(join(dir, 'empty'), '');
    await worker.uploadOutput(pk, 'empty', 'BLOB', join(dir, 'empty'));
    const result = await worker.downloadOutput(pk, 'empty', 'BLOB', join(dir, 'back'));
    expect(result.bytes).toBe(0);
    expect((await stat(join(dir, 'back'))).size).toBe(0);
  });

  it('should refuse a missing file before sending anything, and a dot name as a TypeError', async () => {
    const { worker, pk, dir } = await startedJob();
    await expect(worker.uploadOutput(pk, 'x', 'BLOB', join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(worker.uploadOutput(pk, '..', 'BLOB', join(dir, 'missing'))).rejects.toThrow(TypeError);
  });

  it('should refuse to follow a symbolic link or send what is not a regular file', async () => {
    const { worker, pk, dir } = await startedJob();
    await writeFile(join(dir, 'real'), 'secret');
    await symlink(join(dir, 'real'), join(dir, 'link'));
    await expect(worker.uploadOutput(pk, 'x', 'BLOB', join(dir, 'link'))).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(worker.uploadOutput(pk, 'x', 'BLOB', dir)).rejects.toThrow(/not a regular file/);
    await expect(worker.getOutputInfo(pk, 'x', 'BLOB')).rejects.toMatchObject({ kind: 'bad-request' });
  });

  it('should say not-found for an unknown output pk and leave no file', async () => {
    const { worker, dir } = await startedJob();
    const err = await worker.downloadJobOutputByPk(999_999, join(dir, 'nothing')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).kind).toBe('not-found');
    expect(await readdir(dir)).toEqual([]);
  });
});
