/**
 * The state of a job as the CLI shows it, derived from the job JSON (the server stores no state;
 * the reference's phases, `protocol/phase.ts`). Lower-case words, because operators type them
 * (`jobs --state running`).
 */
import type { FieldExpression } from '../protocol/filter.js';
import { CANCELLED_REASON, phaseOf } from '../protocol/phase.js';
import type { JobJson, Transition } from '../protocol/wire.js';

export type JobState =
  /** Waiting for a node. */
  | 'created'
  /** A node holds it but has not started it. */
  | 'acquired'
  /** Started, not ended. */
  | 'running'
  /** Ended without error. */
  | 'finished'
  /** Ended with an error (a node may reset and run it again). */
  | 'errored'
  /** Cancelled — started or not (the reference marks an unstarted cancel only by its `error_reason`). */
  | 'cancelled';

export const JOB_STATES: readonly JobState[] = ['created', 'acquired', 'running', 'finished', 'errored', 'cancelled'];

export function jobState(job: Pick<JobJson, 'start_time' | 'end_time' | 'error_reason' | 'node' | 'is_cancelled'>): JobState {
  if (job.is_cancelled) return 'cancelled';
  switch (phaseOf(job)) {
    case 'CANCELLED':
      return 'cancelled';
    case 'FINISHED':
      return 'finished';
    case 'ERRORED':
      return 'errored';
    case 'STARTED':
      return 'running';
    case 'CREATED':
      if (job.error_reason === CANCELLED_REASON) return 'cancelled';
      return job.node === null ? 'created' : 'acquired';
  }
}

/** States after which nothing happens unless someone intervenes: what `--wait` and `watch` wait for. */
export function hasEnded(state: JobState): boolean {
  return state === 'finished' || state === 'errored' || state === 'cancelled';
}

/** The state a notification leaves the job in. */
export function stateAfter(transition: Transition, cancelled: boolean): JobState {
  switch (transition) {
    case 'acquire':
    case 'reset':
      return 'acquired';
    case 'release':
    case 'abort':
      return 'created';
    case 'start':
    case 'progress':
      return cancelled ? 'cancelled' : 'running';
    case 'finish':
      return 'finished';
    case 'error':
      return 'errored';
    case 'cancel':
      return 'cancelled';
  }
}

/**
 * A server-side filter that narrows a list to (a superset of) the jobs in `state`; the CLI filters
 * the answer again with {@link jobState}. Uses only fields and expressions the reference accepts.
 */
export function stateFilter(state: JobState): FieldExpression[] {
  const isNull = (field: string, invert = false): FieldExpression => ({ type: 'isnull', field, ...(invert ? { invert: true } : {}) });
  switch (state) {
    case 'created':
      return [isNull('start_time'), isNull('node'), isNull('error_reason')];
    case 'acquired':
      return [isNull('start_time'), isNull('node', true), isNull('error_reason')];
    case 'running':
      return [isNull('start_time', true), isNull('end_time'), isNull('error_reason')];
    case 'finished':
      return [isNull('end_time', true), isNull('error_reason')];
    case 'errored':
      return [isNull('end_time', true), isNull('error_reason', true)];
    case 'cancelled':
      return [isNull('end_time'), isNull('error_reason', true)];
  }
}

/**
 * Why a created job waits, as the nodes that skipped it told the server (`waiting`, an extension of
 * this project's server): `node 3: <reason>; node 4: <reason>`, or `undefined`.
 */
export function waitingNote(job: Pick<JobJson, 'waiting' | 'start_time' | 'end_time' | 'error_reason' | 'node' | 'is_cancelled'>): string | undefined {
  if (jobState(job) !== 'created' || !Array.isArray(job.waiting) || job.waiting.length === 0) return undefined;
  return job.waiting.map((w) => `node ${w.node}: ${w.reason}`).join('; ');
}

/** One line for a job's state, e.g. `running (node 3)` or `errored: exit status 2`. */
export function describeJob(job: JobJson): string {
  const state = jobState(job);
  const node = job.node === null ? '' : ` (node ${job.node})`;
  switch (state) {
    case 'errored':
      return `errored${node}: ${oneLine(job.error_reason ?? '')}`;
    case 'cancelled':
    case 'finished':
      return state;
    case 'created': {
      const why = waitingNote(job);
      return why === undefined ? state : `created, waiting: ${why}`;
    }
    default:
      return `${state}${node}`;
  }
}

/** A multi-line reason (a workflow's: `Error in child job 'x':\n<error>`) on one line. */
export function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}
