/**
 * Lost-node recovery (an extension: docs/COMPATIBILITY.md, Extensions): every `sweepIntervalSeconds`, jobs held by a node unseen for
 * `lostAfterSeconds` are aborted (as an admin abort would: back to CREATED, unacquired, outputs set
 * aside, an `abort` message whose `transition_data.reason` says why) so another node can run them.
 *
 * "Held" means acquired and not finalised: CREATED (acquired, not cancelled), STARTED or ERRORED.
 * `last_seen` is refreshed by every authorised request carrying the node's `Node-Id`.
 */
import { isUfdlError } from '../protocol/errors.js';
import type { ServerContext } from './context.js';
import { HEARTBEAT_RESOLUTION_MS } from './identity.js';
import { JOB_IS_CANCELLED_SQL } from './store/job-fields.js';
import { heartbeatClockMs } from './store/database-clock.js';
import { cachedStatement } from './store/db.js';
import { abortJob } from './store/jobs.js';
import { resumeStalledWorkflows } from './store/stalled-workflows.js';

interface HeldJob {
  job: number;
  node: number;
  last_seen: string | null;
}

/**
 * Jobs held by nodes unseen since `?` or before (ISO time; a node never seen counts as unseen). Read
 * through the index of jobs that have not ended, not the whole history.
 */
export const HELD_BY_LOST_NODES_SQL = `SELECT jobs.pk AS job, nodes.pk AS node, nodes.last_seen AS last_seen
       FROM jobs JOIN nodes ON nodes.pk = jobs.node
       WHERE (nodes.last_seen IS NULL OR nodes.last_seen <= ?)
         AND NOT ${JOB_IS_CANCELLED_SQL}
         -- Ended jobs (FINISHED or ERRORED) are outcomes, not work in progress: a job that failed
         -- on a node that later vanished stays failed rather than silently running again.
         AND jobs.end_time IS NULL
       ORDER BY jobs.pk`;

function heldByLostNodes(ctx: ServerContext, cutoff: string): HeldJob[] {
  return cachedStatement(ctx.db, HELD_BY_LOST_NODES_SQL).all(cutoff) as HeldJob[];
}

/**
 * One sweep: abort every job held by a lost node. Returns the pks of the aborted jobs. `now` is on the
 * clock heartbeats are stamped with (the database's on PostgreSQL, whichever replica leads the sweep).
 */
export function sweepLostNodes(ctx: ServerContext, now = heartbeatClockMs(ctx.db)): number[] {
  // The stored last_seen may lag a node's latest request by up to HEARTBEAT_RESOLUTION_MS (it is
  // refreshed at most that often): a node is lost only once it has certainly been silent for
  // lost_after. Counting from the stored time gave jobs away up to a second early — before an agent
  // that fences at lost_after minus its margin had stopped its child (found by test/faults).
  const cutoff = new Date(now - ctx.options.lostAfterSeconds * 1000 - HEARTBEAT_RESOLUTION_MS).toISOString();
  const aborted: number[] = [];
  for (const held of heldByLostNodes(ctx, cutoff)) {
    const since = held.last_seen ?? 'it registered';
    const reason = `node ${held.node} lost: unseen since ${since}`;
    try {
      abortJob(ctx, held.job, { data: { reason }, onlyIfHeldBy: held.node, onlyIfUnseenSince: cutoff });
      aborted.push(held.job);
      ctx.log.warn({ job: held.job, node: held.node, lastSeen: held.last_seen }, `aborted job ${held.job}: ${reason}`);
    } catch (err) {
      // The job changed since the query (finished, released, deleted): nothing to recover.
      if (!isUfdlError(err)) ctx.log.error({ err, job: held.job }, 'lost-node sweep failed for a job');
    }
  }
  return aborted;
}

/**
 * Start sweeping (while `leads()` says this process is the one to); returns the stopper. The timer re-arms itself after each sweep, so sweeps never
 * overlap, and stops for good once the stopper is called or the server begins to close.
 */
export function startSweeper(ctx: ServerContext, leads: () => boolean = () => true): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    if (stopped || ctx.closing.aborted) return;
    timer = setTimeout(run, ctx.options.sweepIntervalSeconds * 1000);
    // The sweeper alone must not keep the process alive.
    timer.unref();
  };
  const run = () => {
    try {
      // Replicas on one database: only the leader sweeps, so two never abort the same job at once.
      if (leads()) {
        sweepLostNodes(ctx);
        resumeStalledWorkflows(ctx);
      }
    } catch (err) {
      ctx.log.error({ err }, 'lost-node sweep failed');
    }
    arm();
  };
  arm();
  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
