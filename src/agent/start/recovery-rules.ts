/**
 * The recovery decision table (docs/ARCHITECTURE.md, "Recovery") as pure functions: given
 * what the journal says, what the server says about the job (re-read first, always) and what became of
 * the child, decide the one action to take. `recovery.ts` gathers the facts and carries the actions out;
 * this file decides, so every rule is unit-tested without a server or a child.
 */
import type { JobJson } from '../../protocol/wire.js';
import { phaseOf } from '../../protocol/phase.js';
import type { JobState } from '../journal/states.js';

export type { JobState } from '../journal/states.js';

/** What became of the child after an agent restart. */
export type ChildFate =
  /** Never spawned (or the journal has no pid). */
  | 'none'
  /** Same pid and the same process start time: it still runs. */
  | 'alive'
  /** It exited and its exit status is known (from the journal or the wrapper's `exit-status` file). */
  | 'exited'
  /** It was spawned but is gone, and nothing recorded how it ended. */
  | 'gone';

export interface RecoveryFacts {
  state: JobState;
  child: ChildFate;
  /** The server's job, or null when it no longer exists (404). */
  job: JobJson | null;
  /** This slot's node pk. */
  selfPk: number;
  /** The server's `current_job` of this node (from registration). */
  currentJob: number | null;
  /** Restarts already spent on this job by this agent (poison protection). */
  restarts: number;
  maxRestarts: number;
  /** The journal holds a finish decision (payload) for the job. */
  hasFinishPayload: boolean;
}

export type RecoveryAction =
  /** Nothing to do on the server (the job is gone, or another node has it): mark done. */
  | { kind: 'forget'; reason: string; stopChild: boolean }
  /** Acquired and never started: release it so any node can take it. */
  | { kind: 'release'; reason: string }
  /** The child still runs the job we hold: watch it again as if nothing happened. */
  | { kind: 'reattach'; reason: string }
  /** The child ended with a known status: upload its outputs and report it (never run it again). */
  | { kind: 'collect'; reason: string }
  /** Outputs were being uploaded: upload what is missing, then finish. */
  | { kind: 'resume-upload'; reason: string }
  /** The finish decision was taken but maybe not delivered: deliver it again. */
  | { kind: 'refinish'; reason: string }
  /** The child is gone without a status: report an error, then reset and release for another try. */
  | { kind: 'requeue'; reason: string; error: string }
  /** As requeue, but the job has crashed the node too often: report the error and leave it ERRORED. */
  | { kind: 'fail'; reason: string; error: string }
  /** The job was cancelled or taken away (abort): stop the child, finish silently to clear `current_job`. */
  | { kind: 'cleanup'; reason: string; stopChild: boolean }
  /** Finish went through as an error; reset (when ERRORED and ours) and release remain. */
  | { kind: 'rerelease'; reason: string };

/** The reference worker's error text for a job its node was working when it restarted. */
export const NODE_RESTARTED_ERROR = 'Node restarted during job execution.';

/** How the server sees the job relative to this node. */
export type ServerView =
  | 'missing'
  /** Not started and held by us. */
  | 'acquired-by-us'
  /** Not started and not held by us (released, never acquired, or acquired elsewhere). */
  | 'not-ours'
  /** Started, still running, by us. */
  | 'running-by-us'
  /** Cancelled (started, no end, an error). */
  | 'cancelled'
  /** FINISHED or ERRORED, by us. */
  | 'ended-by-us'
  /** Started or ended by another node, or reassigned (abort). */
  | 'reassigned';

export function serverView(job: JobJson | null, selfPk: number): ServerView {
  if (job === null || job.deletion_time !== null) return 'missing';
  const phase = phaseOf(job);
  const ours = job.node === selfPk;
  switch (phase) {
    case 'CREATED':
      return ours ? 'acquired-by-us' : 'not-ours';
    case 'STARTED':
      return ours ? 'running-by-us' : 'reassigned';
    case 'CANCELLED':
      return 'cancelled';
    case 'FINISHED':
    case 'ERRORED':
      return ours ? 'ended-by-us' : 'reassigned';
  }
}

/**
 * Decide what to do with one unfinished journal entry. The order of the checks matters: a recorded
 * exit status always wins over running the job again; the server's view wins over the journal for
 * anything that happened while the agent was down (cancel, abort by lost-node recovery).
 */
export function decideRecovery(facts: RecoveryFacts): RecoveryAction {
  const view = serverView(facts.job, facts.selfPk);
  const childRuns = facts.child === 'alive';
  const holdsCurrent = facts.job !== null && facts.currentJob === facts.job.pk;

  if (view === 'missing') return { kind: 'forget', reason: 'the job no longer exists on the server', stopChild: childRuns };

  switch (facts.state) {
    case 'done':
      return { kind: 'forget', reason: 'already done', stopChild: false };

    case 'acquiring':
    case 'acquired':
    case 'preparing':
      if (view === 'acquired-by-us') return { kind: 'release', reason: `acquired but not started (${facts.state})` };
      if (view === 'running-by-us') return afterStart(facts, 'started although the journal says ' + facts.state);
      if (view === 'cancelled' && holdsCurrent) return { kind: 'cleanup', reason: 'cancelled', stopChild: childRuns };
      return { kind: 'forget', reason: `not ours on the server (${view})`, stopChild: false };

    case 'starting':
      if (view === 'acquired-by-us') return { kind: 'release', reason: 'start never reached the server' };
      if (view === 'running-by-us') return afterStart(facts, 'the server shows it started by us');
      return endedElsewhere(facts, view, holdsCurrent, childRuns);

    case 'running':
      if (view === 'running-by-us') {
        // The agent had stopped the child (shutdown, fencing) and journalled the requeue that follows.
        if (facts.hasFinishPayload) return { kind: 'refinish', reason: 'the agent stopped the child; its finish was decided' };
        return afterStart(facts, 'running when the agent stopped');
      }
      if (view === 'acquired-by-us') {
        // Started by us and then reset (a previous recovery's requeue was interrupted before release).
        return { kind: 'release', reason: 'reset but not released' };
      }
      return endedElsewhere(facts, view, holdsCurrent, childRuns);

    case 'uploading':
      if (view === 'running-by-us') {
        return facts.hasFinishPayload
          ? { kind: 'refinish', reason: 'the agent stopped the child; its finish was decided' }
          : { kind: 'resume-upload', reason: 'outputs were being uploaded' };
      }
      if (view === 'acquired-by-us') return { kind: 'release', reason: 'reset but not released' };
      return endedElsewhere(facts, view, holdsCurrent, childRuns);

    case 'finishing':
      if (view === 'running-by-us') {
        return facts.hasFinishPayload
          ? { kind: 'refinish', reason: 'finish was not confirmed' }
          : { kind: 'resume-upload', reason: 'finishing without a recorded decision' };
      }
      if (view === 'ended-by-us') return { kind: 'rerelease', reason: 'finish was delivered' };
      if (view === 'acquired-by-us') return { kind: 'release', reason: 'reset but not released' };
      return endedElsewhere(facts, view, holdsCurrent, childRuns);

    case 'releasing':
      if (view === 'ended-by-us' || view === 'acquired-by-us') return { kind: 'rerelease', reason: 'release was not confirmed' };
      if (view === 'running-by-us') {
        // The finish that should precede a release never landed: deliver it first.
        return facts.hasFinishPayload
          ? { kind: 'refinish', reason: 'finish before release was not confirmed' }
          : requeueOrFail(facts, 'releasing a running job without a recorded finish');
      }
      return endedElsewhere(facts, view, holdsCurrent, childRuns);
  }
}

/** The server shows the job started by us: the child decides. */
function afterStart(facts: RecoveryFacts, why: string): RecoveryAction {
  switch (facts.child) {
    case 'alive':
      return { kind: 'reattach', reason: `${why}; the child still runs` };
    case 'exited':
      return { kind: 'collect', reason: `${why}; the child exited with a recorded status` };
    case 'none':
    case 'gone':
      return requeueOrFail(facts, `${why}; the child is gone without an exit status`);
  }
}

function requeueOrFail(facts: RecoveryFacts, why: string): RecoveryAction {
  if (facts.restarts + 1 >= facts.maxRestarts) {
    return {
      kind: 'fail',
      reason: `${why}; it has crashed the node ${facts.restarts + 1} times (max_restarts ${facts.maxRestarts})`,
      error: `${NODE_RESTARTED_ERROR} Not retried: the job was interrupted ${facts.restarts + 1} times.`,
    };
  }
  return { kind: 'requeue', reason: why, error: NODE_RESTARTED_ERROR };
}

/** Cancelled, reassigned or ended while we were away. */
function endedElsewhere(facts: RecoveryFacts, view: ServerView, holdsCurrent: boolean, childRuns: boolean): RecoveryAction {
  if (view === 'cancelled' || (view === 'reassigned' && holdsCurrent) || (view === 'not-ours' && holdsCurrent)) {
    // Finish by the node still working a cancelled or aborted job is the silent clean-up that clears
    // its `current_job` (docs/COMPATIBILITY.md); without it the node could never start another job.
    return { kind: 'cleanup', reason: `the job was ${view === 'cancelled' ? 'cancelled' : 'taken away'} while the agent was down`, stopChild: childRuns };
  }
  if (view === 'ended-by-us') return { kind: 'forget', reason: 'the server shows it ended', stopChild: childRuns };
  return { kind: 'forget', reason: `not ours on the server (${view})`, stopChild: childRuns };
}

/**
 * The node's `current_job` names a job the journal does not know (the journal was lost, or it is
 * another agent's journal): the reference rule — finish with an error, and if that error round-trips,
 * reset and release, as the reference worker does at start-up.
 */
export function decideUnknownCurrentJob(currentJob: number | null, journalPks: ReadonlySet<number>): number | null {
  if (currentJob === null || journalPks.has(currentJob)) return null;
  return currentJob;
}
