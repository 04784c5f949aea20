/**
 * The jobs table kept current by the live feed: a page changed by one job's new summary shows what
 * loading it again would show, as far as that page can tell. The filter is the server's own
 * (`dashboard/job-table.ts`): a job that enters it (created, started in the `running` view) takes its
 * place by pk, newest first; one that leaves it (ended, deleted) leaves the page; the count follows.
 */
import type { JobPage, JobSummary } from './types.js';

/** What the page shows: the filter, and whether it is the newest page. */
export interface TableView {
  /** '' (all), a state, `active` (created or running) or `ended`. */
  state: string;
  template: number | undefined;
  /** The newest page: a job newer than its rows belongs on it. */
  firstPage: boolean;
  pageSize: number;
}

/** Whether the table's filter lists `job` (soft-deleted jobs never are). */
export function listedBy(job: JobSummary, view: Pick<TableView, 'state' | 'template'>): boolean {
  if (job.deleted) return false;
  if (view.template !== undefined && job.template.pk !== view.template) return false;
  if (view.state === '' || view.state === job.state) return true;
  const active = job.state === 'created' || job.state === 'running';
  return view.state === 'active' ? active : view.state === 'ended' ? !active : false;
}

/**
 * The states a job may have been in before the feed's `event` left it in state `now`, from the
 * server's transitions (`store/jobs.ts`); undefined for an event this page does not know.
 */
function statesBefore(event: string, now: JobSummary['state']): readonly JobSummary['state'][] | undefined {
  switch (event) {
    case 'created':
      return [];
    case 'acquire':
    case 'release':
    case 'progress':
      return [now];
    case 'start':
      return ['created'];
    case 'finish':
    case 'error':
      return ['running'];
    case 'reset':
      return ['errored'];
    case 'abort':
    case 'cancel':
      return ['created', 'running', 'errored'];
    default:
      return undefined;
  }
}

/**
 * `page` once `job` is as the feed's `event` says; undefined when the page cannot tell what a
 * reload would show (whether a job it does not show was listed before), and must be loaded again.
 */
export function withJob(page: JobPage, job: JobSummary, view: TableView, event: string): JobPage | undefined {
  const index = page.rows.findIndex((row) => row.pk === job.pk);
  const listed = listedBy(job, view);
  if (index >= 0) {
    const rows = page.rows.slice();
    if (listed) {
      rows[index] = job;
      return { ...page, rows };
    }
    rows.splice(index, 1);
    return { ...page, rows, total: page.total - 1 };
  }
  // Not on this page: whether it was listed before (on another page, so counted) decides the count.
  const before = statesBefore(event, job.state);
  if (before === undefined) return undefined;
  const was = before.map((state) => listedBy({ ...job, state }, view));
  if (was.some((w) => w !== was[0])) return undefined;
  const wasListed = was[0] === true;
  if (wasListed === listed) return page;
  if (!listed) return { ...page, total: page.total - 1 };
  // It entered the filter: on this page when its pk falls among the page's, else on another one.
  const total = page.total + 1;
  const newest = page.rows[0]?.pk;
  const oldest = page.rows.at(-1)?.pk;
  if (newest !== undefined && job.pk > newest && !view.firstPage) return { ...page, total, has_newer: true };
  if (oldest !== undefined && job.pk < oldest && (page.has_older || page.rows.length >= view.pageSize)) {
    return { ...page, total, has_older: true };
  }
  const at = page.rows.findIndex((row) => row.pk < job.pk);
  const rows = page.rows.slice();
  rows.splice(at < 0 ? rows.length : at, 0, job);
  if (rows.length <= view.pageSize) return { ...page, rows, total };
  return { ...page, rows: rows.slice(0, view.pageSize), total, has_older: true };
}
