/**
 * The reporting half of a job (docs/ARCHITECTURE.md, "Durability"): upload its outputs, deliver its finish, and —
 * when it must run again elsewhere — reset and release it. Each call follows the journal rule (intent
 * before the HTTP call, result after it) and each is safe to repeat after a crash, which is how
 * recovery uses them.
 *
 * Non-idempotent calls are sent once by the client; after an ambiguous failure (no answer, timeout,
 * 5xx) these functions re-read the server's state before they try again.
 */
import PQueue from 'p-queue';
import { ClientError, isClientError } from '../../client/errors.js';
import type { UploadResult } from '../../client/uploads.js';
import { phaseOf } from '../../protocol/phase.js';
import type { JobJson } from '../../protocol/wire.js';
import { failPoint } from '../fail-points.js';
import type { OutputRecord } from '../journal/records.js';
import { hashFile, type FileDigest } from '../outputs/hash.js';
import { inspectServerCopy, removeForeignCopy } from '../outputs/server-copy.js';
import { retryDelayMs, sleepUnlessAborted } from '../timing.js';
import type { JobContext, ServerCallContext } from './context.js';

/** Attempts per output upload that the server answers with an error (the first included). */
const UPLOAD_ATTEMPTS = 3;

/** What uploading needs beyond the other calls: the agent's counters of bytes and failures. */
export type UploadContext = ServerCallContext & Pick<JobContext, 'metrics'>;

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Outputs uploaded at once: a job with many small outputs is not held up by one round trip each, and
 * a node never floods its server (each output keeps its own journal state, so order does not matter).
 */
export const OUTPUT_UPLOADS_AT_ONCE = 2;

/**
 * Upload every registered output that is not yet uploaded, a few at a time, starting in registration
 * order. Returns the outputs that failed for good (in registration order); none means all are on the server.
 */
export async function uploadOutputs(ctx: UploadContext): Promise<OutputRecord[]> {
  const queue = new PQueue({ concurrency: OUTPUT_UPLOADS_AT_ONCE });
  const pending = ctx.journal.outputs(ctx.jobPk).filter((output) => output.state !== 'uploaded');
  const results = await Promise.all(pending.map((output) => queue.add(() => uploadOne(ctx, output))));
  return results.filter((result): result is OutputRecord => result !== undefined);
}

/** Replacements of a foreign copy per output before giving up (soft delete, then hard delete, spare). */
const MAX_REPLACEMENTS = 3;

/**
 * Upload one output; undefined when it is on the server, else its failed record. While the server
 * cannot be reached, or a proxy throttles it (429), the upload waits for it (no output is lost to an
 * outage); answered failures (5xx, and a proxy's 408) count against {@link UPLOAD_ATTEMPTS}; a
 * definite refusal (413, 406 finished, 417, 403) fails at once.
 * A taken name (400) is this attempt's upload only if the server's copy holds this attempt's bytes;
 * otherwise the copy is replaced (`outputs/server-copy.ts`).
 *
 * The file is read once: the upload hashes what it sends, and the journal records that size and
 * SHA-256 with `uploaded`. Only when an earlier request's outcome is unknown (a crash, a lost answer)
 * is the local file hashed on its own, to compare it with the server's copy.
 */
async function uploadOne(ctx: UploadContext, output: OutputRecord): Promise<OutputRecord | undefined> {
  const { api, journal, jobPk, log } = ctx;
  const key = { name: output.name, type: output.type };
  // This attempt's bytes, once known: recorded at registration (the log), sent by an upload, or hashed.
  let mine: FileDigest | undefined = output.size === null || output.sha256 === null ? undefined : { size: output.size, sha256: output.sha256 };
  const ours = async (): Promise<FileDigest> => (mine ??= await hashFile(output.path));
  // Whether an earlier request of this attempt may have landed (begun before a crash, or unanswered).
  let mayBeOurs = output.attempts > 0;
  let lastError: unknown;
  let answered = 0;
  let replacements = 0;
  for (let attempt = 0; !ctx.signal.aborted; attempt++) {
    journal.markOutput(jobPk, key, 'uploading');
    try {
      const result = await api.uploadOutput(jobPk, output.name, output.type, output.path, { signal: ctx.signal });
      failPoint('output-uploading:after-http');
      if (result.serverSha256 === undefined || result.serverSha256 === result.sent.sha256) {
        return uploaded(ctx, output, result.sent, 'output uploaded');
      }
      await refuseCorruptCopy(ctx, output, result);
      lastError = new Error(`the server stored other bytes (sha256 ${result.serverSha256}) than were sent (sha256 ${result.sent.sha256})`);
      if (++answered >= UPLOAD_ATTEMPTS) break;
      continue;
    } catch (err) {
      lastError = err;
      if (ctx.signal.aborted) break;
      // Ambiguous (no answer, a 5xx): it may have landed. 408 and 429 (a proxy gave up waiting, or
      // throttles): it was not taken, and will be the next time.
      let retryable = isClientError(err) && (err.ambiguous || err.transient);
      try {
        if (isClientError(err, 'duplicate-output')) {
          if (++replacements > MAX_REPLACEMENTS) break;
          if ((await settleTakenName(ctx, output, mayBeOurs ? ours : null)) === 'ours') {
            return uploaded(ctx, output, await ours(), 'the server already has this output (an earlier try of this attempt landed)');
          }
          continue; // the name is free again: upload
        }
        if (!retryable) break;
        mayBeOurs = true;
        // The upload may have landed: ask before sending it again.
        const copy = await inspectServerCopy(api, jobPk, output, ours, ctx.signal).catch(() => undefined);
        if (copy?.kind === 'ours') return uploaded(ctx, output, await ours(), 'the upload landed although its answer was lost');
      } catch (settleErr) {
        lastError = settleErr;
        retryable = isClientError(settleErr) && settleErr.ambiguous;
        if (!retryable || ctx.signal.aborted) break;
      }
      // 408 counts too: a proxy whose time limit is shorter than the upload answers it every time.
      if (isClientError(lastError) && (lastError.kind === 'server' || lastError.status === 408) && ++answered >= UPLOAD_ATTEMPTS) break;
      // A throttling server or proxy may say how long to wait.
      const delay = Math.max(retryDelayMs(attempt, 500, 15_000), isClientError(lastError) ? Math.min(lastError.retryAfterMs ?? 0, 60_000) : 0);
      log.warn({ output: output.name, attempt: attempt + 1, err: errText(lastError), retryInMs: delay }, 'output upload failed; retrying');
      await sleepUnlessAborted(delay, ctx.signal);
    }
  }
  const failed = journal.markOutput(jobPk, key, 'failed', { error: errText(lastError ?? 'aborted') });
  ctx.metrics.uploadFailures.inc();
  log.error({ output: output.name, type: output.type, err: errText(lastError ?? 'aborted') }, 'output upload failed');
  return failed;
}

/** Record the upload with the size and SHA-256 of the bytes the server has. */
function uploaded(ctx: UploadContext, output: OutputRecord, digest: FileDigest, message: string): undefined {
  ctx.journal.markOutput(ctx.jobPk, { name: output.name, type: output.type }, 'uploaded', { digest });
  ctx.metrics.uploadBytes.inc(digest.size);
  ctx.log.debug({ output: output.name, type: output.type, size: digest.size, sha256: digest.sha256 }, message);
  return undefined;
}

/**
 * The server says it stored other bytes than the upload sent (our server names the SHA-256 of what it
 * stored): its copy is not this attempt's output. Remove it so the next try can put ours there; a
 * removal that fails is logged, and the next try finds the name taken and settles it then.
 */
async function refuseCorruptCopy(ctx: UploadContext, output: OutputRecord, result: UploadResult): Promise<void> {
  ctx.log.error(
    { output: output.name, type: output.type, sent: result.sent.sha256, stored: result.serverSha256 },
    'the server stored other bytes than the agent sent; removing its copy to upload again',
  );
  await removeForeignCopy(ctx.api, ctx.jobPk, result.output, ctx.signal).catch((err: unknown) =>
    ctx.log.warn({ output: output.name, err: errText(err) }, 'could not remove the bad copy'),
  );
}

/**
 * The upload was refused because the server holds this name and type: this attempt's own copy (an
 * earlier try landed) or a foreign one, which is removed. `ours` learns this attempt's bytes; null when
 * this attempt never sent the output before. Throws when the server refuses the removal, with a
 * message that says what to do.
 */
async function settleTakenName(ctx: ServerCallContext, output: OutputRecord, ours: (() => Promise<FileDigest>) | null): Promise<'ours' | 'freed'> {
  const found = await inspectServerCopy(ctx.api, ctx.jobPk, output, ours, ctx.signal);
  if (found.kind === 'ours') {
    failPoint('output-uploading:after-http');
    return 'ours';
  }
  if (found.kind === 'none') return 'freed'; // removed meanwhile
  const { copy } = found;
  try {
    const removal = await removeForeignCopy(ctx.api, ctx.jobPk, copy, ctx.signal);
    ctx.log.warn(
      { output: output.name, type: output.type, replaced: copy.pk, createdAt: copy.creation_time, deletedAt: copy.deletion_time, removal },
      'the server held an output of this name that this attempt did not upload (an earlier attempt left it); removed it to upload ours',
    );
    return 'freed';
  } catch (err) {
    if (!isClientError(err, 'forbidden') && !isClientError(err, 'auth')) throw err;
    throw new Error(
      `the server holds an output ${output.name} (${output.type}) that this attempt did not upload (an earlier attempt ` +
        `left it) and refuses to let the agent's user remove it (${err.status ?? err.kind}: ${err.detail}); on the reference ` +
        'backend only an admin (staff) user may remove outputs, so run the agent as one',
      { cause: err },
    );
  }
}

export type FinishResult =
  /** The finish landed (or the server shows the job ended, cancelled or no longer ours). */
  | { delivered: true; job: JobJson | undefined }
  /** Gave up because the agent is exiting; the journal keeps `finishing` for the next start. */
  | { delivered: false };

/**
 * Deliver the finish the journal holds (`error: null` = success) until the server's state confirms
 * it. Finish by the node still working a cancelled or aborted job is the reference's silent clean-up
 * (200, job unchanged, `current_job` cleared), so it is also how such a job is let go.
 */
export async function deliverFinish(ctx: ServerCallContext, error: string | null): Promise<FinishResult> {
  const { api, jobPk, log } = ctx;
  for (let attempt = 0; ; attempt++) {
    if (ctx.signal.aborted) return { delivered: false };
    try {
      const job = await api.finishJob(jobPk, error === null ? { signal: ctx.signal } : { error, signal: ctx.signal });
      failPoint('finishing:after-http');
      return { delivered: true, job };
    } catch (err) {
      if (ctx.signal.aborted) return { delivered: false };
      const settled = await finishSettled(ctx, err);
      if (settled !== undefined) {
        failPoint('finishing:after-http');
        return { delivered: true, job: settled.job };
      }
      const delay = retryDelayMs(attempt, 500, 15_000);
      log.warn({ err: errText(err), attempt: attempt + 1, retryInMs: delay }, 'finish was not confirmed; retrying');
      await sleepUnlessAborted(delay, ctx.signal);
    }
  }
}

/**
 * After a failed finish: settled (with the job, unless it is gone) when the server shows nothing more
 * to finish, else undefined (try again).
 */
async function finishSettled(ctx: ServerCallContext, err: unknown): Promise<{ job: JobJson | undefined } | undefined> {
  if (!(err instanceof ClientError)) return undefined;
  if (err.kind === 'not-found') return { job: undefined };
  // Definite refusals (403 not ours, 406 not working / wrong phase) and ambiguous failures alike:
  // re-read the job and decide from its state.
  let job: JobJson;
  try {
    job = await ctx.api.getJob(ctx.jobPk, { signal: ctx.signal });
  } catch (readErr) {
    if (isClientError(readErr, 'not-found')) return { job: undefined };
    return undefined;
  }
  const phase = phaseOf(job);
  const takenAway = job.node !== ctx.api.nodePk || phase === 'CREATED';
  if (takenAway && err.ambiguous) {
    // The job was aborted away (e.g. lost-node recovery during a partition) and our finish may never
    // have arrived, so the server may still name it as this node's current_job. One more finish is
    // the reference's clean-up path: a silent 200 that clears it, or a harmless refusal.
    await ctx.api.finishJob(ctx.jobPk, { error: 'clean-up after the job was taken away', signal: ctx.signal }).catch(() => {});
  }
  if (job.end_time !== null || phase === 'CANCELLED' || takenAway) return { job };
  // STARTED by us: an ambiguous failure did not land; a definite 406/403 on a job we still run is a
  // disagreement we cannot fix by repeating forever.
  if (!err.ambiguous && err.kind !== 'auth') {
    ctx.log.error({ err: err.message, phase }, 'the server refuses finish for a job it shows running by this node');
    return { job };
  }
  return undefined;
}

/**
 * Give the job back to the queue after it was finished with an error: reset (ERRORED → CREATED,
 * outputs removed) when it is ERRORED and ours, then release. Both are repeated after a crash by
 * re-reading first. Returns false when the agent gave up (exiting) before it could confirm.
 */
export async function resetAndRelease(ctx: ServerCallContext): Promise<boolean> {
  const { api, jobPk, log } = ctx;
  for (let attempt = 0; ; attempt++) {
    if (ctx.signal.aborted) return false;
    try {
      let job = await api.getJob(jobPk, { signal: ctx.signal });
      const self = api.nodePk;
      if (job.node !== self) return true; // released already, or taken away
      let phase = phaseOf(job);
      if (phase === 'ERRORED') {
        job = await resetOnce(ctx);
        failPoint('releasing:after-reset-http');
        phase = phaseOf(job);
      }
      if (phase === 'CREATED' || phase === 'ERRORED') {
        await releaseOnce(ctx);
        failPoint('releasing:after-http');
        return true;
      }
      // STARTED (the finish did not land) or FINISHED/CANCELLED: nothing to release.
      log.warn({ phase }, 'not releasing: the job is not in a releasable phase');
      return true;
    } catch (err) {
      if (isClientError(err, 'not-found')) return true;
      if (ctx.signal.aborted) return false;
      const delay = retryDelayMs(attempt, 500, 15_000);
      log.warn({ err: errText(err), retryInMs: delay }, 'reset/release failed; retrying after re-reading the job');
      await sleepUnlessAborted(delay, ctx.signal);
    }
  }
}

async function resetOnce(ctx: ServerCallContext): Promise<JobJson> {
  try {
    return await ctx.api.resetJob(ctx.jobPk, { signal: ctx.signal });
  } catch (err) {
    if (isClientError(err) && (err.ambiguous || err.kind === 'phase')) {
      const { landed, job } = await ctx.api.checkLanded('reset', ctx.jobPk, { signal: ctx.signal });
      if (landed) return job;
    }
    throw err;
  }
}

async function releaseOnce(ctx: ServerCallContext): Promise<void> {
  try {
    await ctx.api.releaseJob(ctx.jobPk, { signal: ctx.signal });
  } catch (err) {
    if (isClientError(err) && (err.ambiguous || err.kind === 'forbidden' || err.kind === 'phase')) {
      const { landed } = await ctx.api.checkLanded('release', ctx.jobPk, { signal: ctx.signal });
      if (landed) return;
    }
    throw err;
  }
}

/** Release attempts made even when the agent no longer takes work (it drains or stops). */
const RELEASE_ATTEMPTS_ANYWAY = 5;

/**
 * Release a job that was acquired but never started (preparation failed, lost the confirm, draining).
 * Tried a few times in any case, then, while the server does not answer, until it does for as long as
 * `keepTrying` holds: the poll filter lists only jobs no node holds, so a release given up after a
 * short outage while the agent runs on leaves the job held by this node and unseen by every node until
 * the agent restarts. False when it gave up (a definite refusal, the agent is exiting or stops taking
 * work); the journal keeps `releasing`, and the next start's recovery releases it.
 */
export async function releaseUnstarted(ctx: ServerCallContext, keepTrying: () => boolean = () => true): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    if (ctx.signal.aborted) return false;
    try {
      await releaseOnce(ctx);
      failPoint('releasing:after-http');
      return true;
    } catch (err) {
      if (isClientError(err, 'not-found')) return true;
      if (ctx.signal.aborted) return false;
      // No answer (an outage, a 5xx) ends; a definite refusal would not change by asking again.
      const outage = isClientError(err) && err.ambiguous;
      if (attempt + 1 >= RELEASE_ATTEMPTS_ANYWAY && !(outage && keepTrying())) return false;
      const delay = retryDelayMs(attempt, 500, 15_000);
      ctx.log.warn({ err: errText(err), attempt: attempt + 1, retryInMs: delay }, 'release failed; retrying');
      await sleepUnlessAborted(delay, ctx.signal);
    }
  }
}
