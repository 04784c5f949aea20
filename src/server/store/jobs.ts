/**
 * The job state machine: every transition is one SQLite transaction that reads
 * the job and the acting node, applies the reference's checks in the reference's order, writes, and
 * builds the response JSON and the web-socket message from the committed state. Only once the
 * commit is on disk (group commit, `durability.ts`) are transitions emitted, so a watcher never sees
 * a transition that did not happen or that a power cut could undo, and sees them in commit order.
 * Wake-ups are emitted at once (see {@link notifyAcquirable}).
 *
 * Deviations from the reference (docs/COMPATIBILITY.md): assertion-500s are 406 `UFDL_ERR_JOB_NOT_WORKING` or
 * `UFDL_ERR_JOB_PHASE` with a reason (B2); cancel of a CREATED job really cancels it (B4); reset and
 * abort mark outputs `removed` so they never block a re-upload (B5); hard delete works (B7); a node's
 * stale `current_job` (a job it no longer holds in STARTED) does not block its next start (B8).
 */
import { forbidden } from '../../protocol/error-constructors.js';
import { UfdlError } from '../../protocol/errors.js';
import { isFinalised, type Phase } from '../../protocol/phase.js';
import type { JobJson, Transition } from '../../protocol/wire.js';
import type { CallerUser, NodeRow, ServerContext } from '../context.js';
import type { JobDeletion } from '../notify-hub.js';
import { serverFailPoint } from '../fail-points.js';
import { cachedStatement, immediateTransaction, nowIso, type Db } from './db.js';
import { forgetWaiting } from './job-waits.js';
import { getJobRow, jobJson, requireJobRow, requireJobRowWithNode, type JobRow, type JobRowWithNode } from './job-json.js';
import { jobPhase, TransitionEvents } from './notifications.js';
import { cancelChildren, markCancelled, propagateToParent } from './workflow-run.js';

/** What a transition decided inside its transaction. */
type Decision =
  | { kind: 'done'; transition?: Transition; data?: Record<string, unknown>; acquirable?: boolean; wrote?: Partial<JobRow> }
  | { kind: 'refused'; error: UfdlError };

/**
 * `wrote`: every column of the job's row the transition changed, with its new value. Given, the
 * committed row is the one read at the start with these applied, and is not read again (a second
 * read of the joined row was ≈ 3 % of a transition's CPU); absent, the row is read again.
 */
const done = (transition?: Transition, extra: { data?: Record<string, unknown>; acquirable?: boolean; wrote?: Partial<JobRow> } = {}): Decision => ({
  kind: 'done',
  ...(transition === undefined ? {} : { transition }),
  ...extra,
});

/**
 * A refusal. Returned rather than thrown so that writes the reference keeps even when a later check
 * fails (finish clears `current_job` first) are committed.
 */
const refuse = (error: UfdlError): Decision => ({ kind: 'refused', error });

/**
 * Tell the wake-up hub that job `pk` may have become acquirable. Call right after the commit that
 * made it so. Unlike web-socket messages this need not wait for the disk sync: it reveals nothing by
 * itself, and the list answer it leads to waits for the sync like every answer (group commit). Told
 * at once, the hub reserves the job for the node it wakes before any other list request can see the
 * job and race that node for it.
 */
export function notifyAcquirable(ctx: Pick<ServerContext, 'hub' | 'log'>, pk: number): void {
  // A failing listener must not turn a committed transition into an error response.
  try {
    ctx.hub.emit('acquirable', pk);
  } catch (err) {
    ctx.log.error({ err, job: pk }, 'a wake-up listener failed');
  }
}

/**
 * Run `decide` in one immediate transaction on job `pk` (404 if it does not exist), then emit its
 * events. A transition of a workflow's child carries its consequences for the parent (and new
 * children) in the same transaction (`workflow-run.ts`). Returns the job JSON as committed.
 */
function runTransition(ctx: ServerContext, pk: number, decide: (job: JobRow, events: TransitionEvents) => Decision): JobJson {
  return transition(ctx, pk, requireJobRow, decide);
}

/**
 * {@link runTransition} for a transition that also needs the acting node's `current_job`: read with
 * the job in one statement (`requireJobRowWithNode`).
 */
function runNodeTransition(ctx: ServerContext, pk: number, nodePk: number, decide: (job: JobRowWithNode) => Decision): JobJson {
  return transition(ctx, pk, (db, jobPk) => requireJobRowWithNode(db, jobPk, nodePk), decide);
}

function transition<R extends JobRow>(
  ctx: ServerContext,
  pk: number,
  read: (db: Db, pk: number) => R,
  decide: (job: R, events: TransitionEvents) => Decision,
): JobJson {
  const { db } = ctx;
  // BEGIN IMMEDIATE: take the write lock before reading, so a concurrent writer (another process on
  // the same file) cannot make this transaction's read stale.
  const outcome = immediateTransaction(db, () => {
    const events = new TransitionEvents();
    const before = read(db, pk);
    const decision = decide(before, events);
    if (decision.kind === 'refused') return { error: decision.error };
    const after = decision.wrote === undefined ? requireJobRow(db, pk) : { ...before, ...decision.wrote };
    const cascaded = events.messages.splice(0);
    if (decision.transition) {
      events.add(after, decision.transition, decision.data);
      propagateToParent(db, after, decision.transition, decision.data ?? {}, events);
    }
    events.messages.push(...cascaded);
    const createdChildren = events.acquirable.length > 0 && decision.transition === 'finish';
    if (decision.acquirable === true) events.acquirable.push(pk);
    return { json: jobJson(db, after), events, createdChildren };
  });
  if ('error' in outcome) throw outcome.error;
  if (outcome.createdChildren) serverFailPoint('workflow:successors-committed');
  emitAfterCommit(ctx, outcome.events);
  return outcome.json;
}

/**
 * Emit a committed transaction's events: the jobs it made acquirable to the wake-up hub at once (see
 * {@link notifyAcquirable}), the jobs it created (a workflow's) and its transitions once the commit is
 * on disk, in order.
 */
export function emitAfterCommit(ctx: Pick<ServerContext, 'hub' | 'durable' | 'log'>, events: TransitionEvents): void {
  for (const pk of events.acquirable) notifyAcquirable(ctx, pk);
  if (events.messages.length === 0 && events.created.length === 0) return;
  ctx.durable.afterSync(() => {
    // A failing listener must not turn a committed transition into an error response.
    try {
      // Created first: a listener that counts jobs (the dashboard's table) must know a job before its transitions.
      for (const [pk, row] of events.created) ctx.hub.emit('created', pk, row);
      for (const [pk, message, row] of events.messages) ctx.hub.emit('transition', pk, message, row);
    } catch (err) {
      ctx.log.error({ err }, 'a notification listener failed');
    }
  });
}

/** What a transition needs of the node acting on a job. */
type ActingNode = Pick<NodeRow, 'pk' | 'current_job'>;

/** The acting node as read with the job (`requireJobRowWithNode`). */
function actingNode(job: JobRowWithNode, pk: number): ActingNode {
  // The node was resolved by the identity hook; it can only vanish if deleted concurrently.
  if (job.acting_node_pk === null) throw new UfdlError('UFDL_ERR_AUTH_BAD_NODE_ID', `Bad Node-Id header '${pk}': No node with this primary-key`);
  return { pk: job.acting_node_pk, current_job: job.acting_node_current_job };
}

function setCurrentJob(db: Db, nodePk: number, jobPk: number | null): void {
  cachedStatement(db, 'UPDATE nodes SET current_job = ? WHERE pk = ?').run(jobPk, nodePk);
}

/** The reference's IllegalPhaseTransition (406). */
function illegal(job: JobRow, phase: Phase, transition: string, reason: string): UfdlError {
  const kind = job.template_is_meta === 1 ? 'meta-job' : 'workable job';
  return new UfdlError(
    'UFDL_ERR_JOB_PHASE',
    `Attempted an illegal phase-transition on ${kind} ${job.pk} in phase LifecyclePhase.${phase}: ${transition}\n${reason}.`,
  );
}

/**
 * Whether the node's `current_job` still means "working this job": the node holds it and it is
 * STARTED. Anything else (aborted away, cancelled, finished, deleted) is a stale pointer.
 */
function isReallyWorking(db: Db, node: ActingNode): boolean {
  if (node.current_job === null) return false;
  const job = getJobRow(db, node.current_job);
  return job !== undefined && job.node === node.pk && jobPhase(job) === 'STARTED';
}

/** Set the job's live outputs aside (B5): they stay as history but no longer count anywhere. */
function removeOutputs(db: Db, jobPk: number): void {
  cachedStatement(db, 'UPDATE outputs SET removed = 1 WHERE job = ? AND removed = 0').run(jobPk);
}

/**
 * What acquire by `nodePk` does to `job`, read inside the transaction that holds the job's row: take
 * it, nothing (the node holds it already), or the refusal.
 */
function acquireVerdict(job: JobRow, nodePk: number): 'take' | 'held' | UfdlError {
  // The reference's JobIsWorkable permission: a workflow's parent is run by its children.
  if (job.template_is_meta === 1) return forbidden(`Job ${job.pk} is a workflow (meta-job); nodes acquire its children, never the workflow itself`);
  if (job.node === nodePk) return 'held';
  if (job.node !== null) return new UfdlError('UFDL_ERR_JOB_ACQUIRED', `Attempted to acquire job #${job.pk} that has already been acquired`);
  const phase = jobPhase(job);
  if (isFinalised(phase)) {
    const reason = job.cancelled_unstarted === 1 ? 'Job was cancelled before it started' : 'Job has already been finalised';
    return illegal(job, phase, 'acquire', reason);
  }
  return 'take';
}

/**
 * acquire (node): same node again → no-op; held by another → 406 JobAcquired; finalised (including
 * cancelled before start, B4) → 406.
 */
export function acquireJob(ctx: ServerContext, pk: number, nodePk: number): JobJson {
  return runTransition(ctx, pk, (job) => {
    const verdict = acquireVerdict(job, nodePk);
    if (verdict === 'held') return done();
    if (verdict !== 'take') return refuse(verdict);
    cachedStatement(ctx.db, 'UPDATE jobs SET node = ? WHERE pk = ?').run(nodePk, job.pk);
    // Taken: why nodes skipped it is history now (a re-run must not show stale reasons).
    forgetWaiting(ctx.db, job.pk);
    return done('acquire', { wrote: { node: nodePk } });
  });
}

/**
 * release (node owning or working the job). The reference asserts (500) when the node is working
 * the job; we refuse with 406 if it really is (it must finish first), and silently drop a stale
 * `current_job` pointer otherwise (B2/B8).
 */
export function releaseJob(ctx: ServerContext, pk: number, nodePk: number): JobJson {
  return runNodeTransition(ctx, pk, nodePk, (job) => {
    const { db } = ctx;
    const node = actingNode(job, nodePk);
    if (job.node !== nodePk && node.current_job !== job.pk) {
      return refuse(forbidden(`Node ${nodePk} neither holds nor works job ${job.pk}`));
    }
    if (node.current_job === job.pk) {
      if (isReallyWorking(db, node)) {
        return refuse(
          new UfdlError('UFDL_ERR_JOB_PHASE', `Node ${nodePk} is working job ${job.pk}; finish it (with an error if need be) before releasing it`),
        );
      }
      setCurrentJob(db, nodePk, null);
    }
    if (job.node !== nodePk) return done();
    const phase = jobPhase(job);
    // A job cancelled before it started may still be let go of by the node that acquired it.
    const releasable = phase === 'CREATED' || phase === 'ERRORED' || job.cancelled_unstarted === 1;
    if (!releasable) return refuse(illegal(job, phase, 'release', "Can't release a started or finalised job"));
    cachedStatement(db, 'UPDATE jobs SET node = NULL WHERE pk = ?').run(job.pk);
    return done('release', { acquirable: true });
  });
}

/** start (node owning the job): the node must not be working another job; the job must be CREATED. */
export function startJob(ctx: ServerContext, pk: number, nodePk: number): JobJson {
  return runNodeTransition(ctx, pk, nodePk, (job) => {
    const { db } = ctx;
    if (job.node !== nodePk) return refuse(forbidden(`Job ${job.pk} is not acquired by node ${nodePk}; acquire it first`));
    const node = actingNode(job, nodePk);
    if (node.current_job !== null) {
      if (isReallyWorking(db, node)) {
        return refuse(new UfdlError('UFDL_ERR_JOB_NODE_BUSY', 'Attempted to start a job with another already in progress'));
      }
      // B8: the pointer is stale (its job was aborted, cancelled or deleted); it must not block.
      setCurrentJob(db, nodePk, null);
    }
    const phase = jobPhase(job);
    if (phase !== 'CREATED') {
      const reason = job.cancelled_unstarted === 1 ? 'Job was cancelled before it started' : 'Job already started';
      return refuse(illegal(job, phase, 'start', reason));
    }
    const startTime = nowIso();
    // Each attempt starts from 0: the reference keeps the last attempt's progress through a reset or
    // an abort, and its restarted job then showed that progress from its start (docs/COMPATIBILITY.md).
    cachedStatement(db, 'UPDATE jobs SET start_time = ?, progress_amount = 0 WHERE pk = ?').run(startTime, job.pk);
    setCurrentJob(db, nodePk, job.pk);
    return done('start', { wrote: { start_time: startTime, progress_amount: 0 } });
  });
}

/** progress (node owning and working the job, STARTED). `data` is forwarded to watchers. */
export function progressJob(ctx: ServerContext, pk: number, nodePk: number, progress: number, data: Record<string, unknown>): JobJson {
  return runNodeTransition(ctx, pk, nodePk, (job) => {
    const { db } = ctx;
    if (job.node !== nodePk) return refuse(forbidden(`Job ${job.pk} is not acquired by node ${nodePk}`));
    const node = actingNode(job, nodePk);
    if (node.current_job !== job.pk) {
      return refuse(
        new UfdlError('UFDL_ERR_JOB_NOT_WORKING', `Node ${nodePk} is not working job ${job.pk} (not started by it, or already finished)`),
      );
    }
    const phase = jobPhase(job);
    if (phase !== 'STARTED') return refuse(illegal(job, phase, 'progress', 'Can only progress from the STARTED phase'));
    cachedStatement(db, 'UPDATE jobs SET progress_amount = ? WHERE pk = ?').run(progress, job.pk);
    return done('progress', { data, wrote: { progress_amount: progress } });
  });
}

/**
 * finish (node owning or working the job), with `error` → ERRORED. The node's `current_job` is
 * cleared before the phase checks and stays cleared even if they fail (reference behaviour). A job
 * taken away by abort, or cancelled, is a silent success: the clean-up path workers rely on.
 */
export function finishJob(ctx: ServerContext, pk: number, nodePk: number, error: string | undefined): JobJson {
  return runNodeTransition(ctx, pk, nodePk, (job) => {
    const { db } = ctx;
    const node = actingNode(job, nodePk);
    if (job.node !== nodePk && node.current_job !== job.pk) {
      return refuse(forbidden(`Node ${nodePk} neither holds nor works job ${job.pk}`));
    }
    if (node.current_job !== job.pk) {
      return refuse(
        new UfdlError('UFDL_ERR_JOB_NOT_WORKING', `Node ${nodePk} is not working job ${job.pk} (not started by it, or already finished)`),
      );
    }
    setCurrentJob(db, nodePk, null);
    const phase = jobPhase(job);
    if (job.node !== nodePk || phase === 'CANCELLED') return done();
    if (phase !== 'STARTED') return refuse(illegal(job, phase, error === undefined ? 'finish' : 'error', 'Job not in the Started phase'));
    const endTime = nowIso();
    cachedStatement(db, 'UPDATE jobs SET end_time = ?, error_reason = ? WHERE pk = ?').run(endTime, error ?? null, job.pk);
    return done(error === undefined ? 'finish' : 'error', { wrote: { end_time: endTime, error_reason: error ?? null } });
  });
}

/** reset (node owning the job, ERRORED) → CREATED, still held by the node; outputs set aside (B5). */
export function resetJob(ctx: ServerContext, pk: number, nodePk: number): JobJson {
  return runTransition(ctx, pk, (job) => {
    const { db } = ctx;
    if (job.node !== nodePk) return refuse(forbidden(`Job ${job.pk} is not acquired by node ${nodePk}`));
    const phase = jobPhase(job);
    if (phase !== 'ERRORED') return refuse(illegal(job, phase, 'reset', 'Job is not in the ERRORED phase'));
    removeOutputs(db, job.pk);
    cachedStatement(db, 'UPDATE jobs SET start_time = NULL, end_time = NULL, error_reason = NULL WHERE pk = ?').run(job.pk);
    return done('reset', { acquirable: true });
  });
}

export interface AbortOptions {
  /** `transition_data` of the abort message (the sweeper says why). */
  data?: Record<string, unknown>;
  /** Abort only if the job is still held by this node (the sweeper must not race a re-acquire). */
  onlyIfHeldBy?: number;
  /**
   * Abort only if the holding node has not been seen after this time (ISO-8601): checked in the
   * transaction, since the node may have spoken up after the sweeper's query — on another replica,
   * whose write the query could not see.
   */
  onlyIfUnseenSince?: string;
}

/**
 * abort (admin, or the lost-node sweeper) → CREATED and unacquired; outputs set aside (B5). The
 * working node's `current_job` is left pointing at the job, as in the reference, so that its
 * clean-up finish still succeeds; it no longer blocks that node's next start (B8).
 */
export function abortJob(ctx: ServerContext, pk: number, options: AbortOptions = {}): JobJson {
  return runTransition(ctx, pk, (job) => {
    const { db } = ctx;
    if (options.onlyIfHeldBy !== undefined && job.node !== options.onlyIfHeldBy) {
      return refuse(new UfdlError('UFDL_ERR_JOB_PHASE', `Job ${job.pk} is no longer held by node ${options.onlyIfHeldBy}`));
    }
    if (options.onlyIfUnseenSince !== undefined && job.node !== null) {
      const seen = (cachedStatement(db, 'SELECT last_seen FROM nodes WHERE pk = ?').get(job.node) as { last_seen: string | null } | undefined)?.last_seen;
      if (seen != null && seen > options.onlyIfUnseenSince) {
        return refuse(new UfdlError('UFDL_ERR_JOB_PHASE', `Node ${job.node}, holding job ${job.pk}, was seen at ${seen}`));
      }
    }
    const phase = jobPhase(job);
    if (job.template_is_meta === 1) return refuse(illegal(job, phase, 'abort', 'A meta-job cannot be aborted; abort its children, or cancel it'));
    if (isFinalised(phase)) return refuse(illegal(job, phase, 'abort', "Can't abort a finalised job"));
    removeOutputs(db, job.pk);
    cachedStatement(db, 'UPDATE jobs SET start_time = NULL, end_time = NULL, error_reason = NULL, node = NULL WHERE pk = ?').run(job.pk);
    return done('abort', { data: options.data ?? {}, acquirable: true });
  });
}

/**
 * cancel (admin, or the job's creator: a superset of the reference's admin-only rule). Finalised →
 * no-op success; a workflow's child → 406 (cancel the workflow). STARTED/ERRORED → CANCELLED. CREATED
 * → really cancelled (B4): `is_cancelled` true, and it can no longer be acquired or started. A
 * workflow's cancel cascades to every unfinished child.
 */
export function cancelJob(ctx: ServerContext, pk: number, user: CallerUser): JobJson {
  return runTransition(ctx, pk, (job, events) => {
    const { db } = ctx;
    if (!user.is_staff && job.creator !== user.pk) {
      return refuse(forbidden('Only an admin or the creator of the job may cancel it.'));
    }
    const phase = jobPhase(job);
    if (isFinalised(phase)) return done();
    if (job.parent !== null) return refuse(illegal(job, phase, 'cancel', `Job is a child job; cancel its workflow, job ${job.parent}`));
    markCancelled(db, job.pk, phase);
    if (job.template_is_meta === 1) cancelChildren(db, job.pk, events);
    return done('cancel');
  });
}

/**
 * Soft delete (admin): sets `deletion_time` once; lifecycle untouched. Returns the job as the delete
 * left it, or undefined when it was deleted already (nothing changed, nothing to tell).
 */
export function softDeleteJob(db: Db, pk: number): JobRow | undefined {
  return immediateTransaction(db, () => {
    requireJobRow(db, pk);
    const { changes } = cachedStatement(db, 'UPDATE jobs SET deletion_time = ? WHERE pk = ? AND deletion_time IS NULL').run(nowIso(), pk);
    return changes === 0 ? undefined : requireJobRow(db, pk);
  });
}

/**
 * Reinstate (admin): clears `deletion_time`. `row` is the job as the reinstate left it, absent when
 * it was not deleted (nothing changed).
 */
export function reinstateJob(db: Db, pk: number): { json: JobJson; row?: JobRow } {
  return immediateTransaction(db, () => {
    requireJobRow(db, pk);
    const { changes } = cachedStatement(db, 'UPDATE jobs SET deletion_time = NULL WHERE pk = ? AND deletion_time IS NOT NULL').run(pk);
    const row = requireJobRow(db, pk);
    return changes === 0 ? { json: jobJson(db, row) } : { json: jobJson(db, row), row };
  });
}

/**
 * Tell the hub, once the commit is on disk (as a transition is told), that job `pk` was deleted or
 * reinstated: open dashboards move it in or out of their tables, and a hard delete ends the followers
 * of its log. `row` is the job as the change left it (as it was, for a hard delete).
 */
export function emitDeletion(ctx: Pick<ServerContext, 'hub' | 'durable' | 'log'>, pk: number, change: JobDeletion, row: JobRow): void {
  ctx.durable.afterSync(() => {
    // A failing listener must not turn a committed delete into an error response.
    try {
      ctx.hub.emit('deletion', pk, change, row);
    } catch (err) {
      ctx.log.error({ err, job: pk }, 'a deletion listener failed');
    }
  });
}

/** Update (admin): only `description` is writable. */
export function updateJobDescription(db: Db, pk: number, description: string | undefined): JobJson {
  requireJobRow(db, pk);
  if (description !== undefined) cachedStatement(db, 'UPDATE jobs SET description = ? WHERE pk = ?').run(description, pk);
  return jobJson(db, requireJobRow(db, pk));
}

/**
 * Hard delete (admin), B7: removes the job and its output rows (the content-addressed bytes stay, as
 * other outputs may share them), detaches children and clears any node's `current_job`, in one
 * transaction. Returns the job JSON and row as they were before the deletion, pk included.
 *
 * A child of a workflow that has not ended is refused (406, as its cancel is): its workflow knows
 * a node's job only by the row, and would create the node again at a sibling's next finish (or
 * wait for it forever). Once the workflow ended (finished or cancelled) it creates nothing more.
 */
export function hardDeleteJob(db: Db, pk: number): { json: JobJson; row: JobRow } {
  return db
    .transaction(() => {
      const row = requireJobRow(db, pk);
      const parent = row.parent === null ? undefined : getJobRow(db, row.parent);
      if (parent !== undefined && !isFinalised(jobPhase(parent))) {
        throw new UfdlError(
          'UFDL_ERR_JOB_PHASE',
          `Job ${pk} is a child of workflow job ${parent.pk}, which has not ended: the workflow would create its node '${row.child_name}' again. ` +
            `Cancel the workflow (DELETE /v1/jobs/${parent.pk}/cancel) first, then hard-delete the child`,
        );
      }
      const before = { json: jobJson(db, row), row };
      cachedStatement(db, 'UPDATE nodes SET current_job = NULL WHERE current_job = ?').run(pk);
      cachedStatement(db, 'UPDATE jobs SET parent = NULL WHERE parent = ?').run(pk);
      cachedStatement(db, 'DELETE FROM outputs WHERE job = ?').run(pk);
      cachedStatement(db, 'DELETE FROM jobs WHERE pk = ?').run(pk);
      return before;
    })
    .immediate();
}
