/**
 * After a non-idempotent call failed ambiguously ({@link ClientError.ambiguous}: no answer, a timeout,
 * a 5xx), the caller re-reads the job and asks whether the transition landed (retry
 * only after re-reading the server's state). These predicates answer that from the job JSON alone.
 *
 * | action   | landed when                                                          | if not             |
 * |----------|----------------------------------------------------------------------|--------------------|
 * | acquire  | `node` is this node                                                  | retry or move on   |
 * | start    | `start_time` set and `node` is this node                             | start again        |
 * | finish   | `end_time` set, or cancelled, or no longer held by this node         | finish again       |
 * | release  | `node` is not this node                                              | release again      |
 * | reset    | `start_time` is null again                                           | reset again        |
 *
 * `finish` on a cancelled or aborted job is a silent 200 that clears the node's `current_job`; if in
 * doubt whether that happened, finishing again is harmless. For uploads, `getOutputInfo` answers: the
 * output exists (landed) or the server says it has no such output (send it again). Progress is never
 * worth re-reading: the next update carries the latest value.
 */
import type { JobJson } from '../protocol/wire.js';

export type ReconcilableAction = 'acquire' | 'start' | 'finish' | 'release' | 'reset';

export function transitionLanded(action: ReconcilableAction, job: JobJson, nodePk: number | null): boolean {
  switch (action) {
    case 'acquire':
      return nodePk !== null && job.node === nodePk;
    case 'start':
      return job.start_time !== null && nodePk !== null && job.node === nodePk;
    case 'finish':
      return job.end_time !== null || job.is_cancelled || job.node !== nodePk;
    case 'release':
      return job.node !== nodePk;
    case 'reset':
      return job.start_time === null;
  }
}
