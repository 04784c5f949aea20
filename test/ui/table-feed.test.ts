/**
 * The jobs table's page as the live feed changes one job (src/ui/table-feed.ts): the page shows
 * what loading it again would show, as far as the page can tell.
 */
import { describe, expect, it } from 'vitest';
import type { JobPage, JobSummary } from '../../src/protocol/dashboard.js';
import { listedBy, withJob, type TableView } from '../../src/ui/table-feed.js';

function job(pk: number, state: JobSummary['state'], over: Partial<JobSummary> = {}): JobSummary {
  return {
    pk,
    template: { pk: 1, name: 't', version: 1 },
    state,
    node: state === 'created' ? null : 1,
    progress: 0,
    creator: 1,
    description: '',
    creation_time: '2026-12-07T00:00:00.000Z',
    start_time: state === 'created' ? null : '2026-12-07T00:00:01.000Z',
    end_time: null,
    error: null,
    deleted: false,
    ...over,
  };
}

const page = (rows: JobSummary[], over: Partial<JobPage> = {}): JobPage => ({ rows, total: rows.length, has_older: false, has_newer: false, ...over });
const running: TableView = { state: 'running', template: undefined, firstPage: true, pageSize: 3 };
const pks = (p: JobPage) => p.rows.map((r) => r.pk);
/** `withJob()` where the page can tell (no reload). */
function apply(...args: Parameters<typeof withJob>): JobPage {
  const next = withJob(...args);
  if (next === undefined) throw new Error('withJob() asked for a reload');
  return next;
}

describe('withJob()', () => {
  it('puts a job that starts into the running view in its place by pk, and counts it', () => {
    const before = page([job(9, 'running'), job(4, 'running')]);
    const after = apply(before, job(6, 'running'), running, 'start');
    expect(pks(after)).toEqual([9, 6, 4]);
    expect(after.total).toBe(3);
    expect(pks(apply(before, job(2, 'running'), running, 'start'))).toEqual([9, 4, 2]);
  });

  it('takes out a row that leaves the filter (ended, deleted), and counts it out', () => {
    const before = page([job(9, 'running'), job(6, 'running'), job(4, 'running')], { total: 5, has_older: true });
    const ended = apply(before, job(6, 'finished', { end_time: '2026-12-07T00:01:00.000Z' }), running, 'finish');
    expect(pks(ended)).toEqual([9, 4]);
    expect(ended.total).toBe(4);
    const deleted = apply(before, job(9, 'running', { deleted: true }), running, 'progress');
    expect(pks(deleted)).toEqual([6, 4]);
    expect(deleted.total).toBe(4);
  });

  it('updates a row that stays listed in place', () => {
    const before = page([job(9, 'running'), job(4, 'running')]);
    const after = apply(before, job(4, 'running', { progress: 0.5 }), running, 'progress');
    expect(after.rows[1]!.progress).toBe(0.5);
    expect(after.total).toBe(2);
  });

  it('counts, without showing, a job that belongs on another page', () => {
    const full = page([job(9, 'running'), job(6, 'running'), job(4, 'running')], { total: 4, has_older: true });
    const older = apply(full, job(2, 'running'), running, 'start');
    expect(pks(older)).toEqual([9, 6, 4]);
    expect(older).toMatchObject({ total: 5, has_older: true });
    const notFirst = apply(full, job(12, 'running'), { ...running, firstPage: false }, 'start');
    expect(pks(notFirst)).toEqual([9, 6, 4]);
    expect(notFirst).toMatchObject({ total: 5, has_newer: true });
  });

  it('puts a new job at the top of a full first page, whose oldest row moves to the next page', () => {
    const all: TableView = { ...running, state: '' };
    const full = page([job(9, 'created'), job(6, 'running'), job(4, 'finished')]);
    const after = apply(full, job(10, 'created'), all, 'created');
    expect(pks(after)).toEqual([10, 9, 6]);
    expect(after).toMatchObject({ total: 4, has_older: true });
  });

  it('ignores a job the filter does not list and the page does not show', () => {
    const before = page([job(9, 'running')]);
    expect(apply(before, job(10, 'created'), running, 'created')).toBe(before);
    expect(apply(before, job(11, 'running', { template: { pk: 2, name: 'u', version: 1 } }), { ...running, template: 1 }, 'start')).toBe(before);
  });
});

describe('listedBy()', () => {
  it("is the server's filter: a state, active (created or running), ended (the rest), a template; never a deleted job", () => {
    expect(listedBy(job(1, 'created'), { state: 'active', template: undefined })).toBe(true);
    expect(listedBy(job(1, 'running'), { state: 'active', template: undefined })).toBe(true);
    expect(listedBy(job(1, 'errored'), { state: 'active', template: undefined })).toBe(false);
    expect(listedBy(job(1, 'cancelled'), { state: 'ended', template: undefined })).toBe(true);
    expect(listedBy(job(1, 'created'), { state: 'ended', template: undefined })).toBe(false);
    expect(listedBy(job(1, 'running'), { state: '', template: 2 })).toBe(false);
    expect(listedBy(job(1, 'running', { deleted: true }), { state: '', template: undefined })).toBe(false);
  });
});

describe('withJob() for a job on another page', () => {
  const all: TableView = { state: '', template: undefined, firstPage: true, pageSize: 3 };
  const full = (over: Partial<JobPage> = {}) => page([job(9, 'running'), job(6, 'running'), job(4, 'running')], { total: 5, has_older: true, ...over });

  it('does not count again a job that was listed already: its progress, its start in the all view', () => {
    // Job 2 is on the next page: each of its reports changes nothing here.
    expect(apply(full(), job(2, 'running', { progress: 0.1 }), running, 'progress')).toEqual(full());
    expect(apply(full(), job(2, 'running', { progress: 0.2 }), running, 'progress')).toEqual(full());
    expect(apply(full(), job(2, 'running'), all, 'start')).toEqual(full());
    expect(apply(full({ has_newer: true }), job(12, 'running'), { ...running, firstPage: false }, 'progress')).toEqual(full({ has_newer: true }));
  });

  it('counts out a job that leaves the filter from another page', () => {
    expect(apply(full(), job(2, 'finished', { end_time: '2026-12-07T00:01:00.000Z' }), running, 'finish')).toMatchObject({ total: 4 });
  });

  it('still counts a job that enters the filter from another page', () => {
    expect(apply(full(), job(2, 'running'), running, 'start')).toMatchObject({ total: 6, has_older: true });
  });

  it('asks for a reload when the event cannot tell whether the job was listed', () => {
    // An abort comes from created, running or errored: in the active view, listed or not before.
    expect(withJob(full(), job(2, 'created'), { ...running, state: 'active' }, 'abort')).toBeUndefined();
  });
});
