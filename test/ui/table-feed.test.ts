/**
 * The jobs table as the live feed changes one job (src/ui/table-feed.ts): the page shows what
 * loading it again at the same place would show, as far as the page can tell, and asks to be loaded
 * again where it cannot (a row left with older jobs past it, an event that does not say what the job
 * was). Its paging buttons follow the counts of newer and older jobs.
 */
import { describe, expect, it } from 'vitest';
import type { JobPage, JobSummary } from '../../src/protocol/dashboard.js';
import { feedFrameAction, listedBy, pageQuery, tableAt, withJob, type FeedOutcome, type TableState, type TableView } from '../../src/ui/table-feed.js';
// Its node and times follow its state (a finished job has ended).
import { jobSummary as job } from '../helpers/job-summary.js';

/** A page as the server answers it: `newer` jobs newer than its rows, `older` older ones. */
function page(rows: JobSummary[], counts: { newer?: number; older?: number } = {}): JobPage {
  const newer = counts.newer ?? 0;
  const older = counts.older ?? 0;
  return { rows, total: rows.length + newer + older, newer, has_newer: newer > 0, has_older: older > 0 };
}

const running: TableView = { state: 'running', template: undefined, pageSize: 3 };
const all: TableView = { ...running, state: '' };
const pks = (t: TableState) => t.page.rows.map((r) => r.pk);
/** The counts a reload would answer, and the buttons they give. */
const counts = (t: TableState) => ({ total: t.page.total, newer: t.page.newer, has_newer: t.page.has_newer, has_older: t.page.has_older });

/** `withJob()` where the page can tell (no reload). */
function apply(table: TableState, summary: JobSummary, view: TableView, event: string): TableState {
  const outcome = withJob(table, summary, view, event);
  if (outcome.reload) throw new Error('withJob() asked for a reload');
  return outcome.state;
}

/** The newest page, and a page further down (its first row at 9, `newer` jobs above it). */
const newest = (rows: JobSummary[], older = 0) => tableAt(page(rows, { older }), undefined);
const further = (rows: JobSummary[], newer: number, older = 0) => tableAt(page(rows, { newer, older }), undefined);

describe('withJob() on the newest page', () => {
  it('puts a job that starts into the running view in its place by pk, and counts it', () => {
    const before = newest([job(9, 'running'), job(4, 'running')]);
    const after = apply(before, job(6, 'running'), running, 'start');
    expect(pks(after)).toEqual([9, 6, 4]);
    expect(after.page.total).toBe(3);
    expect(pks(apply(before, job(2, 'running'), running, 'start'))).toEqual([9, 4, 2]);
  });

  it('puts a new job at the top of a full page, whose oldest row moves to the next page', () => {
    const full = newest([job(9, 'created'), job(6, 'running'), job(4, 'finished')]);
    const after = apply(full, job(10, 'created'), all, 'created');
    expect(pks(after)).toEqual([10, 9, 6]);
    expect(counts(after)).toEqual({ total: 4, newer: 0, has_newer: false, has_older: true });
  });

  it('takes out a row that leaves the filter (ended, deleted) and counts it out; with nothing older, no reload', () => {
    const before = newest([job(9, 'running'), job(6, 'running'), job(4, 'running')]);
    const ended = apply(before, job(6, 'finished'), running, 'finish');
    expect(pks(ended)).toEqual([9, 4]);
    expect(counts(ended)).toEqual({ total: 2, newer: 0, has_newer: false, has_older: false });
    const deleted = apply(before, job(9, 'running', { deleted: true }), running, 'delete');
    expect(pks(deleted)).toEqual([6, 4]);
    expect(deleted.page.total).toBe(2);
  });

  it('asks to be back-filled when a row leaves with older jobs past the page', () => {
    const before = newest([job(9, 'running'), job(6, 'running'), job(4, 'running')], 2);
    const outcome: FeedOutcome = withJob(before, job(6, 'finished'), running, 'finish');
    expect(outcome.reload).toBe(true);
    // The row goes at once; the reload brings the next older job up.
    expect(pks(outcome.state)).toEqual([9, 4]);
    expect(counts(outcome.state)).toEqual({ total: 4, newer: 0, has_newer: false, has_older: true });
    expect(pageQuery(outcome.state)).toEqual({});
  });

  it('updates a row that stays listed in place', () => {
    const before = newest([job(9, 'running'), job(4, 'running')]);
    const after = apply(before, job(4, 'running', { progress: 0.5 }), running, 'progress');
    expect(after.page.rows[1]!.progress).toBe(0.5);
    expect(after.page.total).toBe(2);
  });

  it('counts, without showing, a job that enters the filter past a full page', () => {
    const full = newest([job(9, 'running'), job(6, 'running'), job(4, 'running')], 1);
    const older = apply(full, job(2, 'running'), running, 'start');
    expect(pks(older)).toEqual([9, 6, 4]);
    expect(counts(older)).toEqual({ total: 5, newer: 0, has_newer: false, has_older: true });
  });

  it('turns Older off when the last older job leaves the filter on another page', () => {
    const full = newest([job(9, 'running'), job(6, 'running'), job(4, 'running')], 1);
    const after = apply(full, job(2, 'finished'), running, 'finish');
    expect(pks(after)).toEqual([9, 6, 4]);
    expect(counts(after)).toEqual({ total: 3, newer: 0, has_newer: false, has_older: false });
  });

  it('ignores a job the filter does not list and the page does not show', () => {
    const before = newest([job(9, 'running')]);
    expect(apply(before, job(10, 'created'), running, 'created')).toBe(before);
    expect(apply(before, job(11, 'running', { template: { pk: 2, name: 'u', version: 1 } }), { ...running, template: 1 }, 'start')).toBe(before);
  });
});

describe('withJob() on a page that is not the newest', () => {
  it('keeps its rows still for a job newer than them, and counts it in the newer-jobs notice', () => {
    const before = further([job(9, 'running'), job(6, 'running'), job(4, 'running')], 3);
    expect(before.top).toBe(10);
    const after = apply(before, job(12, 'running'), running, 'start');
    expect(pks(after)).toEqual([9, 6, 4]);
    expect(counts(after)).toEqual({ total: 7, newer: 4, has_newer: true, has_older: false });
    expect(after.arrived).toEqual([12]);
    // Its progress changes nothing; its end takes it out of the notice again.
    expect(apply(after, job(12, 'running', { progress: 0.5 }), running, 'progress')).toBe(after);
    const ended = apply(after, job(12, 'finished'), running, 'finish');
    expect(ended.arrived).toEqual([]);
    expect(counts(ended)).toEqual({ total: 6, newer: 3, has_newer: true, has_older: false });
  });

  it('becomes the newest page when every newer job leaves: Newer turns off, and new jobs join its top', () => {
    const before = further([job(9, 'running'), job(6, 'running')], 1);
    const alone = apply(before, job(15, 'finished'), running, 'finish');
    expect(alone.top).toBeUndefined();
    expect(counts(alone)).toEqual({ total: 2, newer: 0, has_newer: false, has_older: false });
    expect(pageQuery(alone)).toEqual({});
    expect(pks(apply(alone, job(20, 'running'), running, 'start'))).toEqual([20, 9, 6]);
  });

  it('places by where it was loaded, not by its first row: a job below that place joins the page after its first row left', () => {
    const before = further([job(9, 'running'), job(6, 'running'), job(4, 'running')], 2, 5);
    const left = withJob(before, job(9, 'finished'), running, 'finish');
    expect(left.reload).toBe(true);
    expect(pageQuery(left.state)).toEqual({ before: 10 });
    // Job 8 entered between the old first row and the next: a reload at that place shows it.
    expect(pks(apply(left.state, job(8, 'running'), running, 'start'))).toEqual([8, 6, 4]);
  });

  it('keeps its place and its notice when loaded again there', () => {
    const before = apply(further([job(9, 'running'), job(6, 'running')], 2, 4), job(30, 'running'), running, 'start');
    const reloaded = tableAt(page([job(9, 'running'), job(4, 'running')], { newer: 3, older: 3 }), before.top, before.arrived);
    expect(reloaded.top).toBe(10);
    expect(reloaded.arrived).toEqual([30]);
  });
});

describe('withJob() for deletions', () => {
  const full = () => newest([job(9, 'running'), job(6, 'running'), job(4, 'running')], 2);

  it('takes out a deleted or hard-deleted row (and asks for the back-fill)', () => {
    const deleted = withJob(full(), job(6, 'running', { deleted: true }), running, 'delete');
    expect([pks(deleted.state), deleted.reload, deleted.state.page.total]).toEqual([[9, 4], true, 4]);
    // As it was: the hard delete of a live job still takes it out.
    const gone = withJob(full(), job(6, 'running'), running, 'hard-delete');
    expect([pks(gone.state), gone.reload, gone.state.page.total]).toEqual([[9, 4], true, 4]);
  });

  it('counts out a job deleted on another page, and not a deleted job hard-deleted', () => {
    expect(apply(full(), job(2, 'running', { deleted: true }), running, 'delete').page.total).toBe(4);
    expect(apply(full(), job(2, 'running'), running, 'hard-delete').page.total).toBe(4);
    expect(apply(full(), job(2, 'running', { deleted: true }), running, 'hard-delete')).toEqual(full());
  });

  it('shows a reinstated job in its place, as one that entered the filter', () => {
    const room = newest([job(9, 'running'), job(4, 'running')]);
    const back = apply(room, job(6, 'running'), running, 'reinstate');
    expect(pks(back)).toEqual([9, 6, 4]);
    expect(back.page.total).toBe(3);
    // Not listed by this view either way: nothing changes.
    expect(apply(room, job(7, 'finished'), running, 'reinstate')).toBe(room);
  });
});

describe('withJob() for a job on another page', () => {
  const full = () => newest([job(9, 'running'), job(6, 'running'), job(4, 'running')], 2);

  it('does not count again a job that was listed already: its progress, its start in the all view', () => {
    expect(apply(full(), job(2, 'running', { progress: 0.1 }), running, 'progress')).toEqual(full());
    expect(apply(full(), job(2, 'running', { progress: 0.2 }), running, 'progress')).toEqual(full());
    expect(apply(full(), job(2, 'running'), all, 'start')).toEqual(full());
  });

  it('asks for a reload, unchanged, when the event cannot tell whether the job was listed', () => {
    // An abort comes from created, running or errored: in the active view, listed or not before.
    const outcome = withJob(full(), job(2, 'created'), { ...running, state: 'active' }, 'abort');
    expect(outcome.reload).toBe(true);
    expect(outcome.state).toEqual(full());
    expect(withJob(full(), job(2, 'running'), running, 'something new').reload).toBe(true);
  });
});

describe('tableAt()', () => {
  it('places a page with nothing newer as the newest, wherever it was reached from', () => {
    expect(tableAt(page([job(9, 'running')], { older: 4 }), 40).top).toBeUndefined();
    expect(tableAt(page([job(9, 'running')], { newer: 1 }), undefined).top).toBe(10);
    // An empty page keeps the place it was asked for.
    expect(tableAt(page([], { newer: 2 }), 7).top).toBe(7);
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

describe('feedFrameAction()', () => {
  it("applies a job's event as sent", () => {
    const frame = { type: 'job', event: 'start', job: job(4, 'running') };
    expect(feedFrameAction(JSON.stringify(frame))).toEqual({ apply: frame });
  });

  it('loads the table again on a resync, on a frame of a kind this page does not know, and on one it cannot read', () => {
    for (const data of [
      JSON.stringify({ type: 'resync' }),
      // A newer server's frame, received by a page loaded before the server's upgrade.
      JSON.stringify({ type: 'snapshot', rows: [] }),
      JSON.stringify({ type: 'job', event: 'start' }),
      JSON.stringify({ type: 'job', event: 'start', job: { pk: '4' } }),
      JSON.stringify(null),
      '{"type": "job", ',
      new ArrayBuffer(4),
    ]) {
      expect(feedFrameAction(data), String(data)).toEqual({ reload: true });
    }
  });
});
