/**
 * The lifecycle phase of a job is derived from its fields, never stored (as the reference does).
 */
export type Phase = 'CREATED' | 'STARTED' | 'CANCELLED' | 'FINISHED' | 'ERRORED';

export interface PhaseFields {
  start_time: unknown;
  end_time: unknown;
  error_reason: unknown;
}

export function phaseOf(job: PhaseFields): Phase {
  if (job.start_time == null) return 'CREATED';
  if (job.end_time == null) return job.error_reason == null ? 'STARTED' : 'CANCELLED';
  return job.error_reason == null ? 'FINISHED' : 'ERRORED';
}

/** FINISHED and CANCELLED jobs are final: nothing but soft-delete changes them. */
export function isFinalised(phase: Phase): boolean {
  return phase === 'FINISHED' || phase === 'CANCELLED';
}

/** The marker the reference writes into `error_reason` on cancel. */
export const CANCELLED_REASON = 'Cancelled';
