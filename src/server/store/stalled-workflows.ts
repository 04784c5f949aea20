/**
 * Workflow runs that wait for good: not ended, not cancelled, and no job of theirs unended. A run's
 * next step is taken in the same transaction as its child's end (`workflow-run.ts`), so a healthy run
 * is never seen like this: only one whose graph was stored without import's rules (a cycle, a
 * dependency on a node the graph lacks), and that reached that part before the server checked graphs
 * at each step, or before it ended such runs itself. Nothing would ever wake such a run again; the
 * sweep gives each the step a child's end would have given it, which ends it naming the nodes that
 * can never run, or lets it go on. Read through the index of jobs that have not ended.
 */
import type { ServerContext } from '../context.js';
import { immediateTransaction, cachedStatement } from './db.js';
import { JOB_IS_CANCELLED_SQL } from './job-fields.js';
import { emitAfterCommit } from './jobs.js';
import { TransitionEvents } from './notifications.js';
import { resumeWorkflow } from './workflow-run.js';

export const STALLED_WORKFLOWS_SQL = `SELECT jobs.pk AS pk FROM jobs JOIN templates t ON t.pk = jobs.template
       WHERE jobs.end_time IS NULL AND t.graph IS NOT NULL AND NOT ${JOB_IS_CANCELLED_SQL}
         AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent = jobs.pk AND c.end_time IS NULL)
       ORDER BY jobs.pk`;

/** Resume every stalled run; returns the pks of those it told something (ended or moved on). */
export function resumeStalledWorkflows(ctx: ServerContext): number[] {
  const resumed: number[] = [];
  for (const { pk } of cachedStatement(ctx.db, STALLED_WORKFLOWS_SQL).all() as { pk: number }[]) {
    try {
      const outcome = immediateTransaction(ctx.db, () => {
        const events = new TransitionEvents();
        return { told: resumeWorkflow(ctx.db, pk, events), events };
      });
      emitAfterCommit(ctx, outcome.events);
      if (outcome.told || outcome.events.created.length > 0) {
        resumed.push(pk);
        ctx.log.warn({ job: pk }, `workflow job ${pk} was waiting for good; resumed it`);
      }
    } catch (err) {
      // One run's problem must not keep the sweep from the others (or from the next sweep).
      ctx.log.error({ err, job: pk }, 'could not resume a stalled workflow job');
    }
  }
  return resumed;
}
