/**
 * Job outputs: by name and type under a job (`/v1/jobs/{pk}/outputs/{name}/{type}`) and by
 * pk (`/v1/job-outputs/…`). Uploads stream from the socket through the hashing blob store to
 * disk and are recorded in one transaction after the last byte; downloads stream from disk.
 */
import { parseWith } from '../../protocol/error-constructors.js';
import type { ReadStream } from 'node:fs';
import { PassThrough, Readable, finished } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { UfdlError, isUfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema } from '../../protocol/filter.js';
import { OUTPUT_SHA256_HEADER } from '../../protocol/wire.js';
import type { ServerContext } from '../context.js';
import { isAdmin, requireAdmin, requireUser } from '../identity.js';
import { outputJson, requireJobRow, type OutputRow } from '../store/job-json.js';
import { listOutputs } from '../store/lists.js';
import type { StoredBlob } from '../blobs.js';
import {
  checkCanAddOutput,
  hardDeleteOutput,
  inlineContent,
  recordOutput,
  reinstateOutput,
  requireOutput,
  requireOutputRow,
  softDeleteOutput,
  validateOutputSegment,
} from '../store/outputs.js';
import { JOB_PATH, jobPk, objectBody } from './jobs.js';
import { parsePk } from '../route-params.js';

const OUTPUT_PATH = `${JOB_PATH}/outputs/:name/:type`;
const OUTPUT_PK_PATH = '/v1/job-outputs/:pk(^\\d+$)';

interface OutputParams {
  name: string;
  type: string;
}

/**
 * The (name, type) URL segments, validated (400 `UFDL_ERR_OUTPUT_BAD_NAME`) for an upload or for a
 * lookup (which accepts the longer names of outputs copied to a workflow's parent).
 */
function outputParams(request: FastifyRequest, use: 'create' | 'lookup'): OutputParams {
  const { name, type } = request.params as OutputParams;
  validateOutputSegment('name', name, use);
  validateOutputSegment('type', type, use);
  return { name, type };
}

/** The output pk from a route under `OUTPUT_PK_PATH`; digits no pk reaches are a 404 (see `jobPk`). */
function outputPk(request: FastifyRequest): number {
  return parsePk((request.params as { pk: string }).pk);
}

/** The reference requires a `filename` parameter, whose value it ignores. */
function requireFilename(request: FastifyRequest): void {
  const header = request.headers['content-disposition'];
  if (typeof header !== 'string' || !/(?:^|;)\s*filename\*?\s*=\s*("[^"]+"|[^\s;"]+)/i.test(header)) {
    throw new UfdlError(
      'UFDL_ERR_OUTPUT_NO_FILENAME',
      'Missing filename. Request should include a Content-Disposition header with a filename parameter.',
    );
  }
}

/** Whether an Accept header admits `application/data` (absent: yes). */
export function acceptsApplicationData(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((part) => {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) return false;
    return range === '*/*' || range === 'application/*' || range === 'application/data';
  });
}

/**
 * The bytes of an output: from the database when it keeps them, else a stream of its file, opened
 * before any header is sent so that missing bytes are a clear error rather than a cut-off answer.
 */
async function openBlob(ctx: ServerContext, row: OutputRow): Promise<ReadStream | Buffer> {
  const inline = inlineContent(ctx.db, row.sha256);
  if (inline !== null) return inline;
  const stream = ctx.blobs.open(row.sha256);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  }).catch((err: unknown) => {
    ctx.log.error({ err, output: row.pk, sha256: row.sha256 }, 'the stored bytes of an output are missing');
    throw new UfdlError('UFDL_ERR_SERVER_INTERNAL', `The stored bytes of output ${row.pk} are missing on the server`);
  });
  return stream;
}

/** `attachment; filename="<name>"`, with an RFC 6266 `filename*` when the name is not plain ASCII. */
export function contentDisposition(filename: string): string {
  if (/^[\x20-\x7e]*$/.test(filename) && !/["\\]/.test(filename)) return `attachment; filename="${filename}"`;
  const fallback = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * Stream the request body into the blob store. The body goes through a PassThrough so that a
 * failure (size limit) destroys only our side: the request is then drained, and the 413 reaches a
 * client that is still sending instead of a reset connection.
 */
async function storeUpload(ctx: ServerContext, request: FastifyRequest): Promise<StoredBlob> {
  const payload = request.body instanceof Readable ? request.body : Readable.from([]);
  const max = ctx.options.maxOutputBytes;
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    payload.resume();
    throw tooLarge(max);
  }
  const body = new PassThrough();
  finished(payload, (err) => {
    // A client that goes away mid-upload: fail the store instead of waiting forever.
    if (err) body.destroy(err);
  });
  payload.pipe(body);
  try {
    return await ctx.blobs.put(body as AsyncIterable<Buffer>, max);
  } catch (err) {
    payload.unpipe(body);
    payload.resume();
    if (isUfdlError(err) && err.code === 'UFDL_ERR_OUTPUT_TOO_LARGE') throw tooLarge(max);
    // The client went away mid-upload: its fault, not ours (and nobody is left to read the answer).
    if (request.raw.destroyed || request.raw.readableAborted) {
      throw new UfdlError('UFDL_ERR_REQ_BAD_BODY', 'The upload was interrupted before its end', { cause: err });
    }
    throw err;
  }
}

function tooLarge(max: number): UfdlError {
  return new UfdlError('UFDL_ERR_OUTPUT_TOO_LARGE', `Output exceeds the maximum size of ${max} bytes (server option maxOutputBytes)`);
}

export async function sendBlob(ctx: ServerContext, reply: FastifyReply, row: OutputRow, filename?: string): Promise<FastifyReply> {
  const stream = await openBlob(ctx, row);
  void reply.header('content-type', 'application/data').header('content-length', String(row.size));
  if (filename !== undefined) void reply.header('content-disposition', contentDisposition(filename));
  return reply.send(stream);
}

/** The longest `filetype` a download names its file with: as long as a type string may be. */
const MAX_FILETYPE_LENGTH = 256;

const DownloadBodySchema = z.looseObject({
  // It becomes part of the Content-Disposition header: a lone surrogate (JSON's `"\ud800"`) has no
  // UTF-8 form to percent-encode, and a megabyte of it makes a header no client reads.
  filetype: z
    .string()
    .max(MAX_FILETYPE_LENGTH, { error: `must be at most ${MAX_FILETYPE_LENGTH} characters long` })
    .refine((s) => !/\p{Cs}/u.test(s), { error: 'must be valid Unicode text (it holds a lone UTF-16 surrogate)' })
    .optional(),
  params: z.record(z.string(), z.unknown()).optional(),
});

/** The upload route, in its own scope: only here is the body a raw stream instead of parsed JSON. */
async function uploadRoute(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.post(OUTPUT_PATH, async (request, reply) => {
    const user = requireUser(request);
    const { name, type } = outputParams(request, 'create');
    requireFilename(request);
    const pk = jobPk(request);
    const actor = { userPk: user.pk, isAdmin: isAdmin(request), nodePk: request.node?.pk ?? null };
    // Refuse before reading a byte when we already know the answer.
    checkCanAddOutput(ctx.db, requireJobRow(ctx.db, pk), actor, name, type);
    const blob = await storeUpload(ctx, request);
    const output = recordOutput(ctx.db, pk, actor, name, type, blob);
    // What we stored, for the uploader to compare with what it sent (the reference says nothing).
    if (ctx.options.extensions) void reply.header(OUTPUT_SHA256_HEADER, blob.sha256);
    return output;
  });
}

export async function jobOutputsRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  const { db } = ctx;

  await app.register(uploadRoute);

  app.delete(OUTPUT_PATH, async (request) => {
    requireAdmin(request);
    const { name, type } = outputParams(request, 'lookup');
    const pk = jobPk(request);
    requireJobRow(db, pk);
    return outputJson(softDeleteOutput(db, requireOutput(db, pk, name, type)));
  });

  app.get(OUTPUT_PATH, async (request, reply) => {
    requireUser(request);
    const { name, type } = outputParams(request, 'lookup');
    const pk = jobPk(request);
    requireJobRow(db, pk);
    const row = requireOutput(db, pk, name, type);
    if (!acceptsApplicationData(request.headers.accept)) {
      throw new UfdlError('UFDL_ERR_REQ_NOT_ACCEPTABLE', 'Could not satisfy the request Accept header.');
    }
    return sendBlob(ctx, reply, row);
  });

  app.get(`${OUTPUT_PATH}/info`, async (request) => {
    requireUser(request);
    const { name, type } = outputParams(request, 'lookup');
    const pk = jobPk(request);
    requireJobRow(db, pk);
    return outputJson(requireOutput(db, pk, name, type));
  });

  app.post('/v1/job-outputs/list', async (request) => {
    requireUser(request);
    return listOutputs(db, parseWith(FilterSpecSchema, request.body ?? {}, 'filter specification'));
  });

  app.post('/v1/job-outputs/create', async (request) => {
    requireUser(request);
    throw new UfdlError('UFDL_ERR_AUTH_FORBIDDEN', 'Outputs cannot be created here; upload them to /v1/jobs/{pk}/outputs/{name}/{type}');
  });

  app.get(OUTPUT_PK_PATH, async (request) => {
    requireUser(request);
    return outputJson(requireOutputRow(db, outputPk(request)));
  });

  const forbidUpdate = async (request: FastifyRequest) => {
    requireUser(request);
    throw new UfdlError('UFDL_ERR_AUTH_FORBIDDEN', 'Job outputs cannot be modified');
  };
  app.put(OUTPUT_PK_PATH, forbidUpdate);
  app.patch(OUTPUT_PK_PATH, forbidUpdate);

  app.delete(OUTPUT_PK_PATH, async (request, reply) => {
    requireAdmin(request);
    softDeleteOutput(db, requireOutputRow(db, outputPk(request)));
    return reply.code(204).send();
  });

  app.delete(`${OUTPUT_PK_PATH}/hard`, async (request) => {
    requireAdmin(request);
    return hardDeleteOutput(db, outputPk(request));
  });

  app.delete(`${OUTPUT_PK_PATH}/reinstate`, async (request) => {
    requireAdmin(request);
    return outputJson(reinstateOutput(db, outputPk(request)));
  });

  app.post(`${OUTPUT_PK_PATH}/download`, async (request, reply) => {
    requireUser(request);
    const body = parseWith(DownloadBodySchema, objectBody(request.body, 'download'), 'download body');
    const row = requireOutputRow(db, outputPk(request));
    return sendBlob(ctx, reply, row, `${row.name}.${body.filetype ?? row.type}`);
  });
}
