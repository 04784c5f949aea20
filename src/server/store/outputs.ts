/**
 * Job outputs in the database: name/type validation, lookups, and
 * the transaction that records an uploaded blob as an output.
 *
 * Deviation (B5/B6): an output that was soft-deleted or set aside by reset/abort (`removed = 1`) never
 * blocks a new upload of the same name and type. Lookups by (name, type) prefer the live output; a
 * soft-deleted one is still found (so it can be read and deleted again), a removed one never is.
 */
import { forbidden } from '../../protocol/error-constructors.js';
import { UfdlError } from '../../protocol/errors.js';
import { MAX_OUTPUT_NAME_LENGTH } from '../../protocol/output-names.js';
import type { JobOutputJson } from '../../protocol/wire.js';
import type { StoredBlob } from '../blobs.js';
import { cachedStatement, immediateTransaction, nowIso, type Db } from './db.js';
import { cachedRows } from './row-reader.js';
import { outputJson, requireJobRow, type JobRow, type OutputRow } from './job-json.js';
import { MAX_NODE_NAME_LENGTH, MAX_WORKFLOW_DEPTH } from './workflow-bounds.js';
import { jobPhase } from './notifications.js';

/** Types are unbounded in the reference; a bound keeps headers and rows sane. */
export const MAX_OUTPUT_TYPE_LENGTH = 1000;

/**
 * The longest name a lookup accepts. A workflow's parent gets each finished child's outputs named
 * `node:name` (`workflow-state.ts`), once more for each workflow the child is nested in: a name of
 * up to 200 characters behind up to {@link MAX_WORKFLOW_DEPTH} node names of their own length, each
 * with its `:`. Only the server makes such names; an upload's name stays within the reference's 200.
 */
export const MAX_COPIED_OUTPUT_NAME_LENGTH = MAX_OUTPUT_NAME_LENGTH + MAX_WORKFLOW_DEPTH * (MAX_NODE_NAME_LENGTH + 1);

/**
 * Check an output name or type taken from a URL segment (already percent-decoded), for an upload
 * (`create`) or for finding an output already stored (`lookup`, which accepts the longer names of
 * outputs copied to a workflow's parent). Neither ever reaches the file system (blobs are stored by
 * hash), but they do reach headers and clients' disks (download file names), so `/`, `.`/`..`, NUL
 * and other control characters are refused.
 */
export function validateOutputSegment(what: 'name' | 'type', value: string, use: 'create' | 'lookup'): void {
  const max = what === 'type' ? MAX_OUTPUT_TYPE_LENGTH : use === 'create' ? MAX_OUTPUT_NAME_LENGTH : MAX_COPIED_OUTPUT_NAME_LENGTH;
  let problem: string | undefined;
  if (value.length === 0) problem = 'is empty';
  else if (value.length > max) problem = `is longer than ${max} characters`;
  else if (value === '.' || value === '..') problem = `may not be '${value}'`;
  else if (value.includes('/') || value.includes('\\')) problem = 'may not contain a slash';
  else if (/[\u0000-\u001f\u007f]/.test(value)) problem = 'may not contain NUL or other control characters';
  if (problem !== undefined) {
    throw new UfdlError('UFDL_ERR_OUTPUT_BAD_NAME', `Bad output ${what} ${JSON.stringify(value.slice(0, 80))}: it ${problem}`);
  }
}

/** The live output of the job with this name and type, if any. */
export function liveOutput(db: Db, jobPk: number, name: string, type: string): OutputRow | undefined {
  return cachedRows<OutputRow>(db, 'SELECT * FROM outputs WHERE job = ? AND name = ? AND type = ? AND removed = 0 AND deletion_time IS NULL').get(jobPk, name, type);
}

/** The output a (name, type) lookup finds: the live one, else the latest soft-deleted one. */
export function findOutput(db: Db, jobPk: number, name: string, type: string): OutputRow | undefined {
  return cachedStatement(db,
      `SELECT * FROM outputs WHERE job = ? AND name = ? AND type = ? AND removed = 0
       ORDER BY deletion_time IS NULL DESC, pk DESC LIMIT 1`,
    )
    .get(jobPk, name, type) as OutputRow | undefined;
}

/** `findOutput`, or the reference's 400 BadName. */
export function requireOutput(db: Db, jobPk: number, name: string, type: string): OutputRow {
  const row = findOutput(db, jobPk, name, type);
  if (!row) {
    throw new UfdlError('UFDL_ERR_OUTPUT_UNKNOWN', `Bad name '${name}': Job has no output by this name/type (${name}/${type})`);
  }
  return row;
}

export function getOutputRow(db: Db, pk: number): OutputRow | undefined {
  return cachedRows<OutputRow>(db, 'SELECT * FROM outputs WHERE pk = ?').get(pk);
}

/** The output row by pk (soft-deleted and removed ones included, as detail routes find them), or 404. */
export function requireOutputRow(db: Db, pk: number): OutputRow {
  const row = getOutputRow(db, pk);
  if (!row) throw new UfdlError('UFDL_ERR_REQ_NOT_FOUND', 'Not found.');
  return row;
}

/** Who is adding an output: an admin, or the node holding the job. */
export interface OutputActor {
  userPk: number;
  isAdmin: boolean;
  nodePk: number | null;
}

/**
 * The checks of add-output, in the reference's order: permission (admin or the node holding the
 * job), never started → 417, FINISHED → 406, a live output with this name/type → 400. Run before the
 * upload is read and again in the transaction that records it, since the job may change meanwhile.
 */
export function checkCanAddOutput(db: Db, job: JobRow, actor: OutputActor, name: string, type: string): void {
  if (!actor.isAdmin && (actor.nodePk === null || job.node !== actor.nodePk)) {
    throw forbidden(`Only an admin or the node holding job ${job.pk} may add outputs to it`);
  }
  if (job.start_time === null) {
    throw new UfdlError('UFDL_ERR_JOB_NOT_STARTED', 'Attempted to perform the following action on an un-started job: add_output');
  }
  if (jobPhase(job) === 'FINISHED') {
    throw new UfdlError('UFDL_ERR_JOB_FINISHED', 'Attempted to perform the following action on a finished job: add_output');
  }
  if (liveOutput(db, job.pk, name, type)) {
    throw new UfdlError(
      'UFDL_ERR_OUTPUT_EXISTS',
      `Bad name '${name}': Job already has an output by this name/type (${name}/${type})`,
    );
  }
}

/**
 * Record a stored blob as output (name, type) of job `jobPk`, re-checking everything in the same
 * immediate transaction (the job may have been finished, aborted or deleted during a long upload).
 */
export function recordOutput(db: Db, jobPk: number, actor: OutputActor, name: string, type: string, blob: StoredBlob): JobOutputJson {
  return immediateTransaction(db, () => {
    const job = requireJobRow(db, jobPk);
    checkCanAddOutput(db, job, actor, name, type);
    // Identical bytes are stored once; a blob kept in a file stays there.
    cachedStatement(db, 'INSERT OR IGNORE INTO blobs (sha256, size, content) VALUES (?, ?, ?)').run(blob.sha256, blob.size, blob.content ?? null);
    const { lastInsertRowid } = cachedStatement(db, 'INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(jobPk, name, type, blob.sha256, blob.size, actor.userPk, nowIso());
    return outputJson(getOutputRow(db, Number(lastInsertRowid))!);
  });
}

/** The bytes of a blob kept in the database, or null when they are in its file. */
export function inlineContent(db: Db, sha256: string): Buffer | null {
  const row = cachedStatement(db, 'SELECT content FROM blobs WHERE sha256 = ?').get(sha256) as { content: Buffer | null } | undefined;
  return row?.content ?? null;
}

/** Soft delete (sets `deletion_time` once). */
export function softDeleteOutput(db: Db, row: OutputRow): OutputRow {
  cachedStatement(db, 'UPDATE outputs SET deletion_time = ? WHERE pk = ? AND deletion_time IS NULL').run(nowIso(), row.pk);
  return getOutputRow(db, row.pk)!;
}

/**
 * Reinstate a soft-deleted output. Refused (400) when a live output of the same job, name and type
 * exists meanwhile: two live outputs with one name and type would make lookups ambiguous.
 */
export function reinstateOutput(db: Db, pk: number): OutputRow {
  return db
    .transaction(() => {
      const row = requireOutputRow(db, pk);
      if (row.deletion_time === null) return row;
      const live = liveOutput(db, row.job, row.name, row.type);
      if (live && row.removed === 0) {
        throw new UfdlError(
          'UFDL_ERR_OUTPUT_EXISTS',
          `Bad name '${row.name}': Job already has an output by this name/type (${row.name}/${row.type})`,
        );
      }
      cachedStatement(db, 'UPDATE outputs SET deletion_time = NULL WHERE pk = ?').run(pk);
      return getOutputRow(db, pk)!;
    })
    .immediate();
}

/**
 * Hard delete an output row. As in the reference the response shows `pk: null`; the bytes stay on
 * disk because other outputs may share them (content addressing).
 */
export function hardDeleteOutput(db: Db, pk: number): JobOutputJson {
  const row = requireOutputRow(db, pk);
  cachedStatement(db, 'DELETE FROM outputs WHERE pk = ?').run(pk);
  return { ...outputJson(row), pk: null };
}
