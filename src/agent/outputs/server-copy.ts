/**
 * What the server holds under one of this attempt's output names, when an upload is refused because
 * the name and type are taken (400) or its outcome is unknown (timeout, crash).
 *
 * An attempt's outputs are its own. The journal keeps, per attempt, every output's name, type and file
 * and how often its upload was begun (its size and SHA-256 only once an upload was acknowledged: the
 * upload hashes what it sends); a copy on the server counts as this attempt's only when this attempt
 * may have sent it, the copy is live, and it holds the same bytes as this attempt's file. Anything else was left
 * by an earlier attempt or put there by someone else, and is removed so ours can go up. This matters
 * on the reference backend, which keeps a job's outputs across reset and abort (soft-deleted, but
 * still listed, served, and blocking an upload of the same name and type): counting such a copy as
 * ours reported a re-run as successful with the killed attempt's log.
 *
 * Removing a copy on the reference: Delete Output is admin-only and only a soft delete, which does
 * not free the name; the hard delete of the output by pk (`DELETE /v1/job-outputs/{pk}/hard`, admin
 * only) does. Our server frees the name on the soft delete already, and never keeps outputs across
 * reset. So: a live copy is soft-deleted first (the least destructive step, enough on our server);
 * a copy that is already deleted but still blocks the name is hard-deleted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isClientError } from '../../client/errors.js';
import type { JobOutputJson } from '../../protocol/wire.js';
import type { OutputKey } from '../journal/records.js';
import type { NodeApi } from '../ports.js';
import { hashFile, type FileDigest } from './hash.js';

/** What a (name, type) lookup on the server found, judged against this attempt's output. */
export type ServerCopy =
  /** Nothing by this name and type. */
  | { kind: 'none' }
  /** A live copy with this attempt's bytes: the upload landed. */
  | { kind: 'ours' }
  /** Something else holds the name: an earlier attempt's output, or someone else's. */
  | { kind: 'foreign'; copy: JobOutputJson };

type CopyApi = Pick<NodeApi, 'getOutputInfo' | 'downloadOutput' | 'deleteOutput' | 'hardDeleteOutput'>;

/**
 * Look at the server's copy of `output`. `ours` says what this attempt's bytes are (size and SHA-256,
 * learned by hashing its local file when no acknowledged upload recorded them); null when this attempt
 * never sent the output before the current request, and then no byte needs comparing. Comparing
 * downloads the copy and hashes it (the reference says nothing of an output's content in its JSON);
 * this happens only after a crash or a lost answer, which is rare.
 */
export async function inspectServerCopy(api: CopyApi, jobPk: number, output: OutputKey, ours: (() => Promise<FileDigest>) | null, signal: AbortSignal): Promise<ServerCopy> {
  let copy: JobOutputJson;
  try {
    copy = await api.getOutputInfo(jobPk, output.name, output.type, { signal });
  } catch (err) {
    if (isClientError(err, 'bad-request') || isClientError(err, 'not-found')) return { kind: 'none' };
    throw err;
  }
  if (ours === null || copy.deletion_time !== null) return { kind: 'foreign', copy };
  const [mine, theirs] = [await ours(), await copyDigest(api, jobPk, output, signal)];
  return mine.size === theirs.size && mine.sha256 === theirs.sha256 ? { kind: 'ours' } : { kind: 'foreign', copy };
}

async function copyDigest(api: CopyApi, jobPk: number, output: OutputKey, signal: AbortSignal): Promise<FileDigest> {
  const dir = await mkdtemp(join(tmpdir(), 'ufdl-agent-copy-'));
  try {
    const file = join(dir, 'copy');
    await api.downloadOutput(jobPk, output.name, output.type, file, { signal });
    return await hashFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How {@link removeForeignCopy} removed a copy. */
export type Removal = 'soft-delete' | 'hard-delete';

/**
 * Remove a copy that is not this attempt's, the least destructive way first (see the module
 * comment). Throws the server's refusal (e.g. 403: only an admin may remove outputs).
 */
export async function removeForeignCopy(api: CopyApi, jobPk: number, copy: JobOutputJson, signal: AbortSignal): Promise<Removal> {
  if (copy.deletion_time === null) {
    await api.deleteOutput(jobPk, copy.name, copy.type, { signal });
    return 'soft-delete';
  }
  if (copy.pk === null) throw new Error(`the server's output ${copy.name} (${copy.type}) has no pk to remove it by`);
  try {
    await api.hardDeleteOutput(copy.pk, { signal });
  } catch (err) {
    // Sent once: after a lost answer (or a concurrent removal) the copy may be gone already.
    if (!(isClientError(err) && (err.ambiguous || err.kind === 'not-found'))) throw err;
  }
  return 'hard-delete';
}
