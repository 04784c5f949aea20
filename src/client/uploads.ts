/**
 * Outputs as files: uploads stream from disk (never whole in memory), downloads stream into a temporary
 * file beside the destination, renamed into place only when complete. Neither has a total time limit;
 * both fail when no byte moves for `transferIdleTimeoutMs`.
 *
 * An upload is NOT retried on a transient failure (adding an output is not idempotent: the server may
 * have stored it before the connection broke). After an ambiguous failure, ask `getOutputInfo`: if the
 * output exists it landed. A 400 "already has an output" is a ClientError of kind `duplicate-output`.
 * Downloads are idempotent and retried from the start.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { JobOutputJson } from '../protocol/wire.js';
import { ClientError, errorFromNetwork, errorFromResponse } from './errors.js';
import type { RequestSpec } from './http.js';
import type { Transport } from './transport.js';

/**
 * File I/O in 1 MiB pieces: the 64 KiB default costs a read (or write) syscall and a trip through the
 * stream machinery every 64 KiB; with 1 MiB a 1 GiB upload took 4.6–4.7 s instead of 4.7–7.3 s and
 * a download 4.2–5.4 s instead of 4.8–7.4 s (bench/outputs.bench.mjs, 2-core VM under load).
 */
const FILE_CHUNK_BYTES = 1024 * 1024;

/** Largest error body read from a binary route. */
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * `attachment; filename=<name>` as the reference clients send it. Names that a header cannot carry
 * verbatim (non-ASCII, quotes, `;`) are sent quoted and also as RFC 5987 `filename*`; the server
 * ignores the value but requires the parameter.
 */
export function contentDisposition(name: string): string {
  if (/^[\x21-\x7e][\x20-\x7e]*$/.test(name) && !/[";\\]/.test(name)) return `attachment; filename=${name}`;
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * The bytes of `filePath`, {@link FILE_CHUNK_BYTES} at a time, read into two buffers used over and
 * over: the next chunk is read into one while the other is sent. got writes an iterable body one
 * chunk at a time and asks for the next only once the previous one is in the socket, so a buffer is
 * refilled only after the kernel has copied it. (A new buffer per read, as a file stream makes, costs
 * the kernel a page fault for every 4 KiB it copies in: a third of the upload's CPU for 1 GiB, and
 * twice curl's time for the same upload.)
 */
async function* fileChunks(filePath: string): AsyncGenerator<Buffer> {
  const handle = await open(filePath, 'r');
  try {
    const buffers = [Buffer.allocUnsafeSlow(FILE_CHUNK_BYTES), Buffer.allocUnsafeSlow(FILE_CHUNK_BYTES)];
    let next = 0;
    let reading = handle.read(buffers[next]!, 0, FILE_CHUNK_BYTES, null);
    try {
      for (;;) {
        const { bytesRead, buffer } = await reading;
        if (bytesRead === 0) return;
        next ^= 1;
        reading = handle.read(buffers[next]!, 0, FILE_CHUNK_BYTES, null);
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      // Stopped half-way (the request failed): the read ahead is no longer wanted.
      reading.catch(() => {});
    }
  } finally {
    await handle.close();
  }
}

/** Stream `filePath` as the body of `spec` (a POST to an output route); one attempt, plus the 401 one. */
export async function uploadFile(transport: Transport, spec: RequestSpec, name: string, filePath: string): Promise<JobOutputJson> {
  const { http } = transport;
  const info = await stat(filePath);
  if (!info.isFile()) throw new TypeError(`not a regular file: ${filePath}`);
  const response = await transport.withAuth(
    async (headers) => {
      // A new body per attempt: the 401 retry must send the whole file again.
      const body = fileChunks(filePath);
      const link = http.link(spec.signal);
      try {
        const got = await http.got();
        const res = await got(spec.path, {
          method: spec.method,
          headers: {
            ...headers,
            accept: 'application/json',
            'content-type': 'application/data',
            'content-disposition': contentDisposition(name),
            'content-length': String(info.size),
          },
          body,
          responseType: 'text',
          followRedirect: false,
          timeout: http.transferTimeouts(),
          signal: link.signal,
        });
        return http.ensureOk(spec, { status: res.statusCode, headers: res.headers, text: res.body });
      } catch (err) {
        throw err instanceof ClientError ? err : errorFromNetwork(spec.method, `/${spec.path}`, err);
      } finally {
        link.dispose();
        // Closes the file if got stopped reading it half-way (a no-op once it has ended).
        await body.return(undefined);
      }
    },
    { signal: spec.signal },
  );
  try {
    return JSON.parse(response.text) as JobOutputJson;
  } catch {
    throw new ClientError({ kind: 'protocol', method: spec.method, path: `/${spec.path}`, status: response.status, detail: 'the upload answer is not JSON' });
  }
}

export interface DownloadResult {
  /** The destination path. */
  path: string;
  bytes: number;
}

/**
 * Download the body of `spec` into `destPath`: written to `<dest>.<random>.part`, checked against
 * `Content-Length`, then renamed over `destPath`. Retried from scratch on transient failures.
 */
export async function downloadFile(transport: Transport, spec: RequestSpec, destPath: string): Promise<DownloadResult> {
  return transport.retrying(
    true,
    `${spec.method} ${spec.path}`,
    () => transport.withAuth((headers) => downloadOnce(transport, spec, headers, destPath), { signal: spec.signal }),
    spec.signal,
  );
}

async function downloadOnce(transport: Transport, spec: RequestSpec, headers: Record<string, string>, destPath: string): Promise<DownloadResult> {
  const link = transport.http.link(spec.signal);
  try {
    return await streamToFile(transport, spec, headers, destPath, link.signal);
  } finally {
    link.dispose();
  }
}

async function streamToFile(transport: Transport, spec: RequestSpec, headers: Record<string, string>, destPath: string, signal: AbortSignal): Promise<DownloadResult> {
  const { http } = transport;
  const where = `/${spec.path}`;
  const stream = (await http.got()).stream(spec.path, {
    method: spec.method,
    // The reference offers only `application/data` here: `Accept: application/json` would get a 406.
    headers: { ...headers, accept: '*/*' },
    ...(spec.json === undefined ? {} : { json: spec.json }),
    timeout: http.transferTimeouts(),
    signal,
  });
  let response: { statusCode: number; headers: Record<string, string | string[] | undefined> };
  try {
    [response] = (await once(stream, 'response')) as [typeof response];
  } catch (err) {
    stream.destroy();
    throw errorFromNetwork(spec.method, where, err);
  }
  if (response.statusCode < 200 || response.statusCode >= 300) {
    const text = await readLimited(stream, ERROR_BODY_LIMIT).catch(() => '');
    stream.destroy();
    throw errorFromResponse({ method: spec.method, path: where, status: response.statusCode, text, headers: response.headers });
  }

  const temp = join(dirname(destPath), `.${basename(destPath)}.${randomBytes(6).toString('hex')}.part`);
  try {
    await pipeline(stream, createWriteStream(temp, { mode: 0o644, highWaterMark: FILE_CHUNK_BYTES }));
    const { size } = await stat(temp);
    const declared = response.headers['content-length'];
    if (typeof declared === 'string' && !response.headers['content-encoding'] && Number(declared) !== size) {
      throw new ClientError({ kind: 'network', method: spec.method, path: where, detail: `truncated download: ${size} of ${declared} bytes`, code: 'ERR_TRUNCATED' });
    }
    await rename(temp, destPath);
    return { path: destPath, bytes: size };
  } catch (err) {
    stream.destroy();
    await unlink(temp).catch(() => {});
    if (err instanceof ClientError) throw err;
    // A local file-system failure is not a network problem; keep it as it is (not retried).
    if (isLocalFsError(err)) throw err;
    throw errorFromNetwork(spec.method, where, err);
  }
}

function isLocalFsError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ['ENOENT', 'EACCES', 'ENOSPC', 'EROFS', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EPERM', 'EMFILE', 'EDQUOT'].includes(code) && (err as { syscall?: unknown }).syscall !== 'connect';
}

async function readLimited(stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    chunks.push(buffer);
    size += buffer.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
