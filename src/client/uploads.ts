/**
 * Outputs as files: uploads stream from disk (never whole in memory) and hash what they send, so the
 * caller learns the SHA-256 of the bytes the server acknowledged without reading the file twice;
 * downloads stream into a temporary
 * file beside the destination, renamed into place only when complete. Neither has a total time limit;
 * both fail when no byte moves for `transferIdleTimeoutMs`.
 *
 * An upload is NOT retried on a transient failure (adding an output is not idempotent: the server may
 * have stored it before the connection broke). After an ambiguous failure, ask `getOutputInfo`: if the
 * output exists it landed. A 400 "already has an output" is a ClientError of kind `duplicate-output`.
 * Downloads are idempotent and retried from the start.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OUTPUT_SHA256_HEADER, type JobOutputJson } from '../protocol/wire.js';
import { ClientError, errorFromNetwork, errorFromResponse } from './errors.js';
import type { RawResponse, RequestSpec } from './http.js';
import type { Transport } from './transport.js';
import { FILE_CHUNK_BYTES, HashingReader, openRegularFile, type FileDigest } from './file-reads.js';


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

/** What an upload sent and what the server answered. */
export interface UploadResult {
  /** The server's record of the new output. */
  output: JobOutputJson;
  /** Size and SHA-256 of the bytes sent: the file as it was read, once, for this upload. */
  sent: FileDigest;
  /**
   * The SHA-256 the server computed of the bytes it stored, when it says (our server's
   * `X-UFDL-Output-SHA256`; the reference does not): compare it with `sent`.
   */
  serverSha256: string | undefined;
}

/**
 * Stream `filePath` as the body of `spec` (a POST to an output route), hashing it on the way; one
 * attempt, plus the 401 one. The file is opened `O_NOFOLLOW` and must be a regular file.
 */
export async function uploadFile(transport: Transport, spec: RequestSpec, name: string, filePath: string): Promise<UploadResult> {
  const { handle, size } = await openRegularFile(filePath);
  try {
    const { response, sent } = await sendFile(transport, spec, name, handle, size);
    let output: JobOutputJson;
    try {
      output = JSON.parse(response.text) as JobOutputJson;
    } catch {
      throw new ClientError({ kind: 'protocol', method: spec.method, path: `/${spec.path}`, status: response.status, detail: 'the upload answer is not JSON' });
    }
    const header = response.headers[OUTPUT_SHA256_HEADER];
    const serverSha256 = typeof header === 'string' && /^[0-9a-f]{64}$/i.test(header) ? header.toLowerCase() : undefined;
    return { output, sent, serverSha256 };
  } finally {
    await handle.close();
  }
}

async function sendFile(transport: Transport, spec: RequestSpec, name: string, handle: FileHandle, size: number): Promise<{ response: RawResponse; sent: FileDigest }> {
  const { http } = transport;
  return transport.withAuth(
    async (headers) => {
      // A new read per attempt: the 401 retry must send (and hash) the whole file again.
      const reader = new HashingReader(handle, size);
      const body = reader.chunks();
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
            'content-length': String(size),
          },
          body,
          responseType: 'text',
          followRedirect: false,
          timeout: http.transferTimeouts(),
          signal: link.signal,
        });
        const response = http.ensureOk(spec, { status: res.statusCode, headers: res.headers, text: res.body });
        const sent = reader.digest();
        if (sent === undefined) {
          // Answered 2xx before the whole body went out: the server cannot have stored this file.
          throw new ClientError({ kind: 'protocol', method: spec.method, path: `/${spec.path}`, status: res.statusCode, detail: 'the server answered before the whole file was sent' });
        }
        return { response, sent };
      } catch (err) {
        throw err instanceof ClientError ? err : errorFromNetwork(spec.method, `/${spec.path}`, err);
      } finally {
        link.dispose();
        // Ends the read if got stopped half-way (a no-op once it has ended).
        await body.return(undefined);
      }
    },
    { signal: spec.signal },
  );
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
  const where = `/${spec.path}`;
  // The reference offers only `application/data` here: `Accept: application/json` would get a 406.
  const response = await transport.http.stream(spec, { ...headers, accept: '*/*' }, signal);
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    const text = await readLimited(response, ERROR_BODY_LIMIT).catch(() => '');
    response.destroy();
    throw errorFromResponse({ method: spec.method, path: where, status, text, headers: response.headers });
  }

  const temp = join(dirname(destPath), `.${basename(destPath)}.${randomBytes(6).toString('hex')}.part`);
  try {
    await pipeline(response, createWriteStream(temp, { mode: 0o644, highWaterMark: FILE_CHUNK_BYTES }));
    const { size } = await stat(temp);
    const declared = response.headers['content-length'];
    if (typeof declared === 'string' && !response.headers['content-encoding'] && Number(declared) !== size) {
      throw new ClientError({ kind: 'network', method: spec.method, path: where, detail: `truncated download: ${size} of ${declared} bytes`, code: 'ERR_TRUNCATED' });
    }
    await rename(temp, destPath);
    return { path: destPath, bytes: size };
  } catch (err) {
    response.destroy();
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
