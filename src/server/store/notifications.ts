/**
 * The web-socket message of a job transition, built in this one place so the
 * transitions, the catch-up message on connect and the lost-node sweeper agree on its shape.
 */
import { phaseOf, type Phase } from '../../protocol/phase.js';
import type { JobNotification, Transition } from '../../protocol/wire.js';
import type { JobRow } from './job-json.js';

/**
 * The phase the server acts on. A job cancelled before it started (bug B4, `cancelled_unstarted`)
 * counts as CANCELLED although its fields alone would say CREATED.
 */
export function jobPhase(row: Pick<JobRow, 'start_time' | 'end_time' | 'error_reason' | 'cancelled_unstarted'>): Phase {
  return row.cancelled_unstarted === 1 ? 'CANCELLED' : phaseOf(row);
}

/**
 * The frame sent to watchers after `transition`, from the job as it is after the transition. Keys in
 * the reference's order; `node` only when the job has one, `error` only when it is ERRORED.
 */
export function notificationFor(row: JobRow, transition: Transition, data: Record<string, unknown> = {}): JobNotification {
  const phase = jobPhase(row);
  // Built key by key so JSON.stringify keeps the reference's order with the optional keys in place.
  const message = {
    transition,
    description: row.description,
    pk: row.pk,
    progress: row.progress_amount,
    cancelled: phase === 'CANCELLED',
  } as JobNotification;
  if (row.node !== null) message.node = row.node;
  if (phase === 'ERRORED' && row.error_reason !== null) message.error = row.error_reason;
  message.transition_data = data;
  return message;
}

/**
 * The notifications one transaction produced (a transition, and in a workflow its effects on the
 * parent, new children, a cancel's cascade), in the order they happened, the jobs that may have
 * become acquirable, and the jobs it created. Built inside the transaction from the rows as written; emitted after the commit.
 */
export class TransitionEvents {
  /** With each message the row it was built from: what the transition left, for listeners that show more of the job. */
  readonly messages: Array<[pk: number, message: JobNotification, row: JobRow]> = [];
  readonly acquirable: number[] = [];
  /** Jobs the transaction created (a workflow's parent and children), with their rows as inserted. */
  readonly created: Array<[pk: number, row: JobRow]> = [];

  add(row: JobRow, transition: Transition, data: Record<string, unknown> = {}): void {
    this.messages.push([row.pk, notificationFor(row, transition, data), row]);
  }
}

/**
 * The "proxy" transition the reference replays to a new watcher of a job that is past CREATED:
 * STARTED → progress, FINISHED → finish, ERRORED → error, CANCELLED → cancel. None for CREATED.
 */
export function catchUpTransition(row: JobRow): Transition | undefined {
  switch (jobPhase(row)) {
    case 'CREATED':
      return undefined;
    case 'STARTED':
      return 'progress';
    case 'FINISHED':
      return 'finish';
    case 'ERRORED':
      return 'error';
    case 'CANCELLED':
      return 'cancel';
  }
}
