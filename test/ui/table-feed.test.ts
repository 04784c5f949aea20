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

describe('withJob()', () => {
  it('puts a job that starts into the running view in its place by pk, and counts it', () => {
    const before = page([job(9, 'running'), job(4, 'running')]);
    const after = withJob(before, job(6, 'running'), running);
    expect(pks(after)).toEqual([9, 6, 4]);
    expect(after.total).toBe(3);
    expect(pks(withJob(before, job(2, 'running'), running))).toEqual([9, 4, 2]);
  });

  it('takes out a row that leaves the filter (ended, deleted), and counts it out', () => {
    const before = page([job(9, 'running'), job(6, 'running'), job(4, 'running')], { total: 5, has_older: true });
    const ended = withJob(before, job(6, 'finished', { end_time: '2026-12-07T00:01:00.000Z' }), running);
    expect(pks(ended)).toEqual([9, 4]);
    expect(ended.total).toBe(4);
    const deleted = withJob(before, job(9, 'running', { deleted: true }), running);
    expect(pks(deleted)).toEqual([6, 4]);
    expect(deleted.total).toBe(4);
  });

  it('updates a row that stays listed in place', () => {
    const before = page([job(9, 'running'), job(4, 'running')]);
    const after = withJob(before, job(4, 'running', { progress: 0.5 }), running);
    expect(after.rows[1]!.progress).toBe(0.5);
    expect(after.total).toBe(2);
  });

  it('counts, without showing, a job that belongs on another page', () => {
    const full = page([job(9, 'running'), job(6, 'running'), job(4, 'running')], { total: 4, has_older: true });
    const older = withJob(full, job(2, 'running'), running);
    expect(pks(older)).toEqual([9, 6, 4]);
    expect(older).toMatchObject({ total: 5, has_older: true });
    const notFirst = withJob(full, job(12, 'running'), { ...running, firstPage: false });
    expect(pks(notFirst)).toEqual([9, 6, 4]);
    expect(notFirst).toMatchObject({ total: 5, has_newer: true });
  });

  it('puts a new job at the top of a full first page, whose oldest row moves to the next page', () => {
    const all: TableView = { ...running, state: '' };
    const full = page([job(9, 'created'), job(6, 'running'), job(4, 'finished')]);
    const after = withJob(full, job(10, 'created'), all);
    expect(pks(after)).toEqual([10, 9, 6]);
    expect(after).toMatchObject({ total: 4, has_older: true });
  });

  it('ignores a job the filter does not list and the page does not show', () => {
    const before = page([job(9, 'running')]);
    expect(withJob(before, job(10, 'created'), running)).toBe(before);
    expect(withJob(before, job(11, 'running', { template: { pk: 2, name: 'u', version: 1 } }), { ...running, template: 1 })).toBe(before);
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
