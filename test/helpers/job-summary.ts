/**
 * A job as the dashboard's jobs table and its feed carry it (`JobSummary`), for the table's tests:
 * its node and times follow its state; anything else is given in `over`.
 */
import type { JobSummary } from '../../src/protocol/dashboard.js';

export function jobSummary(pk: number, state: JobSummary['state'], over: Partial<JobSummary> = {}): JobSummary {
  return {
    pk,
    template: { pk: 1, name: 't1', version: 1 },
    state,
    node: state === 'created' ? null : 1,
    progress: 0,
    creator: 1,
    description: '',
    creation_time: '2026-12-07T00:00:00.000Z',
    start_time: state === 'created' ? null : '2026-12-07T00:00:01.000Z',
    end_time: state === 'created' || state === 'running' ? null : '2026-12-07T00:01:00.000Z',
    error: state === 'errored' ? 'boom' : null,
    deleted: false,
    ...over,
  };
}
