/**
 * The jobs table against a model of the server: random jobs come, change and go (created, started,
 * ended, reset, cancelled, deleted, reinstated, hard-deleted) while the table sits on some page; after
 * every feed event, the page the table shows (its rows and counts) must be the page a reload at its
 * place would answer, once any reload it asked for is made.
 */
import { describe, expect, it } from 'vitest';
import type { JobPage, JobSummary } from '../../src/protocol/dashboard.js';
import { listedBy, pageQuery, settled, tableAt, withJob, type FeedEvent, type TableState, type TableView } from '../../src/ui/table-feed.js';
import { jobSummary } from '../helpers/job-summary.js';

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function summary(pk: number, template: number, state: JobSummary['state'], deleted = false): JobSummary {
  return jobSummary(pk, state, { template: { pk: template, name: `t${template}`, version: 1 }, deleted });
}

/** The server's paging (`dashboard/job-table.ts`) over the model's jobs. */
function serverPage(jobs: Map<number, JobSummary>, view: TableView, query: { before?: number; after?: number }): JobPage {
  const listed = [...jobs.values()].filter((j) => listedBy(j, view)).sort((a, b) => b.pk - a.pk);
  let rows: JobSummary[];
  if (query.after !== undefined && query.before === undefined) {
    rows = listed.filter((j) => j.pk > query.after!).reverse().slice(0, view.pageSize).reverse();
  } else {
    rows = listed.filter((j) => query.before === undefined || j.pk < query.before).slice(0, view.pageSize);
  }
  const newest = query.after !== undefined && query.before === undefined ? query.after : query.before !== undefined ? query.before - 1 : undefined;
  const above = newest === undefined ? undefined : (rows[0]?.pk ?? newest);
  const newer = above === undefined ? 0 : listed.filter((j) => j.pk > above).length;
  const total = listed.length;
  return { rows, total, newer, has_newer: newer > 0, has_older: total - newer - rows.length > 0 };
}

/** One random change to one job: the feed's event and the job as it left it (as it was, for a hard delete). */
function change(jobs: Map<number, JobSummary>, next: () => number, rnd: () => number): { event: string; job: JobSummary } | undefined {
  const all = [...jobs.values()];
  if (all.length === 0 || rnd() < 0.25) {
    const pk = next();
    const job = summary(pk, rnd() < 0.5 ? 1 : 2, 'created');
    jobs.set(pk, job);
    return { event: 'created', job };
  }
  const job = all[Math.floor(rnd() * all.length)]!;
  const set = (event: string, now: JobSummary) => {
    jobs.set(now.pk, now);
    return { event, job: now };
  };
  const pick = rnd();
  if (pick < 0.08) {
    jobs.delete(job.pk);
    return { event: 'hard-delete', job };
  }
  if (pick < 0.2) return job.deleted ? set('reinstate', { ...job, deleted: false }) : set('delete', { ...job, deleted: true });
  if (pick < 0.3) return set('progress', { ...job, progress: rnd() });
  switch (job.state) {
    case 'created':
      return rnd() < 0.7 ? set('start', summary(job.pk, job.template.pk, 'running', job.deleted)) : set('cancel', summary(job.pk, job.template.pk, 'cancelled', job.deleted));
    case 'running': {
      const r = rnd();
      // Aborted (by an admin, or a lost node's recovery): back in the queue.
      if (r < 0.15) return set('abort', summary(job.pk, job.template.pk, 'created', job.deleted));
      const ended = r < 0.4 ? 'finished' : r < 0.7 ? 'errored' : 'cancelled';
      return set(ended === 'finished' ? 'finish' : ended === 'errored' ? 'error' : 'cancel', summary(job.pk, job.template.pk, ended, job.deleted));
    }
    case 'errored':
      if (rnd() < 0.3) return set('abort', summary(job.pk, job.template.pk, 'created', job.deleted));
      return set('reset', summary(job.pk, job.template.pk, 'created', job.deleted));
    default:
      return undefined;
  }
}

/** For one seed: the model's jobs after 30 random changes, and the table's view with a page size of 1–4. */
function world(seed: number, base: Omit<TableView, 'pageSize'>) {
  const rnd = random(seed);
  const view: TableView = { ...base, pageSize: 1 + Math.floor(rnd() * 4) };
  const jobs = new Map<number, JobSummary>();
  let last = 0;
  const next = () => ++last;
  for (let i = 0; i < 30; i++) change(jobs, next, rnd);
  return { rnd, view, jobs, next };
}

const VIEWS: Omit<TableView, 'pageSize'>[] = [
  { state: '', template: undefined },
  { state: 'running', template: undefined },
  { state: 'active', template: undefined },
  { state: 'ended', template: 2 },
  { state: 'created', template: 1 },
];

describe('the jobs table against a model of the server', () => {
  for (const [v, base] of VIEWS.entries()) {
    it(`shows what a reload at its place shows, after every event (view ${JSON.stringify(base)})`, () => {
      for (let seed = 1; seed <= 150; seed++) {
        const { rnd, view, jobs, next } = world(seed * 31 + v, base);
        /** As the page's go(): a move, placed below `top`. */
        const go = (query: { before?: number; after?: number }, top?: number): TableState => {
          const page = serverPage(jobs, view, query);
          if (query.after !== undefined && page.newer === 0 && page.rows.length < view.pageSize) return go({});
          return tableAt(page, top);
        };
        let table = go({});
        const log: string[] = [];
        for (let step = 0; step < 120; step++) {
          const r = rnd();
          const { page } = table;
          if (r < 0.1 && page.has_older) {
            const oldest = page.rows.at(-1)!.pk;
            table = go({ before: oldest }, oldest);
            log.push(`older ${oldest}`);
            continue;
          }
          if (r < 0.15 && page.has_newer) {
            table = go(page.rows.length === 0 || page.newer <= view.pageSize ? {} : { after: page.rows[0]!.pk });
            log.push('newer');
            continue;
          }
          const changed = change(jobs, next, rnd);
          if (!changed) continue;
          log.push(`${changed.event} ${changed.job.pk} ${changed.job.state}${changed.job.deleted ? ' deleted' : ''}`);
          const outcome = withJob(table, changed.job, view, changed.event);
          table = outcome.state;
          if (outcome.reload) table = tableAt(serverPage(jobs, view, pageQuery(table)), table.top, table.arrived);
          const reloaded = serverPage(jobs, view, pageQuery(table));
          const shown = { pks: table.page.rows.map((j) => j.pk), total: table.page.total, newer: table.page.newer, has_newer: table.page.has_newer, has_older: table.page.has_older };
          const want = { pks: reloaded.rows.map((j) => j.pk), total: reloaded.total, newer: reloaded.newer, has_newer: reloaded.has_newer, has_older: reloaded.has_older };
          expect(shown, `seed ${seed}, page size ${view.pageSize}, top ${table.top}, after:\n${log.slice(-8).join('\n')}`).toEqual(want);
          expect(table.page.rows).toEqual(reloaded.rows);
        }
      }
    });
  }
});

describe('the jobs table against a model of the server, with events during its loads', () => {
  for (const [v, base] of VIEWS.entries()) {
    it(`shows what a reload shows once a load lands after events it may or may not show (view ${JSON.stringify(base)})`, () => {
      for (let seed = 1; seed <= 150; seed++) {
        const { rnd, view, jobs, next } = world(seed * 37 + v, base);
        let table = tableAt(serverPage(jobs, view, {}), undefined);
        const log: string[] = [];
        for (let step = 0; step < 60; step++) {
          // A load at the table's place or one page older (as jobs.tsx's reload and go), whose answer the
          // server computes after `computedAfter` of the `flying` events that happen while it is on its way.
          const { page } = table;
          const older = rnd() < 0.3 && page.has_older;
          const query = older ? { before: page.rows.at(-1)!.pk } : pageQuery(table);
          const top = older ? page.rows.at(-1)!.pk : table.top;
          const flying = Math.floor(rnd() * 4);
          const computedAfter = Math.floor(rnd() * (flying + 1));
          log.push(`${older ? 'older' : 'reload'} ${JSON.stringify(query)}, ${flying} events, answer after ${computedAfter}`);
          let answer = computedAfter === 0 ? serverPage(jobs, view, query) : undefined;
          const during: FeedEvent[] = [];
          for (let i = 1; i <= flying; i++) {
            const changed = change(jobs, next, rnd);
            if (changed) {
              log.push(`  ${changed.event} ${changed.job.pk} ${changed.job.state}${changed.job.deleted ? ' deleted' : ''}`);
              during.push(changed);
              // Meanwhile the shown table follows the feed (its own reloads wait for the load).
              table = withJob(table, changed.job, view, changed.event).state;
            }
            if (i === computedAfter) answer = serverPage(jobs, view, query);
          }
          const landed = older ? tableAt(answer!, top) : tableAt(answer!, top, table.arrived);
          const outcome = settled(landed, during, view);
          table = outcome.reload ? tableAt(serverPage(jobs, view, pageQuery(outcome.state)), outcome.state.top, outcome.state.arrived) : outcome.state;
          const reloaded = serverPage(jobs, view, pageQuery(table));
          expect(
            { rows: table.page.rows, total: table.page.total, newer: table.page.newer, has_newer: table.page.has_newer, has_older: table.page.has_older },
            `seed ${seed}, page size ${view.pageSize}, top ${table.top}, after:\n${log.slice(-10).join('\n')}`,
          ).toEqual({ rows: reloaded.rows, total: reloaded.total, newer: reloaded.newer, has_newer: reloaded.has_newer, has_older: reloaded.has_older });
        }
      }
    });
  }
});
