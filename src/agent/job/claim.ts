/**
 * Claiming a candidate (docs/ARCHITECTURE.md, "One job"): journal the intent, acquire, journal the
 * result, re-read the job and go on only if it is ours and still startable — the reference's acquire
 * is not atomic, so a node can "win" an acquire that another node also won. Whatever is taken but
 * not wanted is released at once.
 */
import { isClientError } from '../../client/errors.js';
import { phaseOf } from '../../protocol/phase.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { failPoint } from '../fail-points.js';
import type { JobContext, ServerCallContext } from './context.js';
import { releaseUnstarted } from './server-calls.js';

/** What claiming a candidate came to. */
export type ClaimOutcome =
  /** The job is ours and runs in the background; it owns the slot now. */
  | 'claimed'
  /** Another node got it, or it changed meanwhile: try the next candidate. */
  | 'lost'
  /** It fits no more (e.g. the agent began to drain): stop walking the list. */
  | 'declined';

export type ClaimResult = { outcome: 'claimed'; job: JobJson } | { outcome: Exclude<ClaimOutcome, 'claimed'> };

/**
 * Journal `releasing`, release the unstarted job, journal `done`. Retried while the agent takes work;
 * left to recovery when the agent stops first.
 */
export async function releaseUnstartedJob(ctx: ServerCallContext & Pick<JobContext, 'accepting'>): Promise<void> {
  ctx.journal.transition(ctx.jobPk, 'releasing');
  if (await releaseUnstarted(ctx, () => ctx.accepting())) ctx.journal.transition(ctx.jobPk, 'done');
}

/** Acquire `job` for the context's slot and confirm it is ours (`claimed`), or say why not. */
export async function claimJob(ctx: JobContext, job: JobJson, template: TemplateJson): Promise<ClaimResult> {
  const { api, journal, jobPk, log } = ctx;
  const self = api.nodePk!;
  const known = journal.get(jobPk);
  if (known && known.state !== 'done') {
    // An earlier claim of this job is still being settled (e.g. its release waits for the server).
    return { outcome: 'lost' };
  }
  journal.beginAcquire({ jobPk, nodePk: self, templatePk: template.pk, slot: ctx.slot.index, jobDir: ctx.dir.root });
  try {
    await api.acquireJob(jobPk);
  } catch (err) {
    failPoint('acquiring:after-http');
    if (isClientError(err) && err.ambiguous) {
      // It may have landed: whatever we hold but will not run is given back (release is a no-op
      // success for a job that is not ours).
      log.warn({ err: String(err) }, 'acquire failed without a clear answer; releasing whatever it may have taken');
      await releaseUnstartedJob(ctx);
      return { outcome: 'lost' };
    }
    journal.abandon(jobPk, `acquire refused: ${err instanceof Error ? err.message : String(err)}`);
    return { outcome: 'lost' };
  }
  failPoint('acquiring:after-http');
  journal.transition(jobPk, 'acquired');
  let fresh: JobJson;
  try {
    fresh = await api.getJob(jobPk);
  } catch (err) {
    log.warn({ err: String(err) }, 'could not re-read the job after acquire; releasing it');
    await releaseUnstartedJob(ctx);
    return { outcome: 'lost' };
  }
  failPoint('acquired:after-http');
  if (fresh.node !== self) {
    journal.transition(jobPk, 'done');
    log.info({ holder: fresh.node }, 'another node holds the job after all (lost the acquire race)');
    return { outcome: 'lost' };
  }
  if (phaseOf(fresh) !== 'CREATED' || fresh.error_reason !== null) {
    log.info({ phase: phaseOf(fresh), error: fresh.error_reason }, 'the job changed before it could start; releasing it');
    await releaseUnstartedJob(ctx);
    return { outcome: 'lost' };
  }
  if (!ctx.accepting()) {
    await releaseUnstartedJob(ctx);
    return { outcome: 'declined' };
  }
  return { outcome: 'claimed', job: fresh };
}
