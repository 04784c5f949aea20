/**
 * The jobs table kept current by the live feed: a page changed by one job's new summary shows what
 * loading it again at the same place would show, as far as that page can tell, and says when it
 * cannot. The filter is the server's own (`dashboard/job-table.ts`): a job that enters it (created,
 * started in the `running` view, reinstated) takes its place by pk, newest first; one that leaves it
 * (ended, deleted) leaves the page; the counts follow.
 *
 * Where the page is decides what a job newer than its rows does. The newest page shows it at the
 * top, as a reload would. Any other page keeps its rows still (a page the operator is reading does
 * not shift under them) and counts it in a "N newer jobs" notice instead. A row that leaves a page
 * with older jobs past it is back-filled: the page asks to be loaded again at the same place, which
 * brings the next older job up. The paging buttons follow the counts of newer and older jobs, kept
 * as jobs enter and leave on other pages.
 */
import type { FeedFrame, JobPage, JobSummary } from './types.js';

/** The table's filter and page size. */
export interface TableView {
  /** '' (all), a state, `active` (created or running) or `ended`. */
  state: string;
  template: number | undefined;
  pageSize: number;
}

/** What the table shows, and where it is. */
export interface TableState {
  page: JobPage;
  /**
   * The page shows the newest jobs of the filter below this pk; undefined on the newest page, which
   * shows the newest jobs of all and takes new ones at its top.
   */
  top: number | undefined;
  /** Jobs that entered the filter newer than this page (not the newest) since it was opened. */
  arrived: readonly number[];
}

/** What one feed event did to the table. */
export interface FeedOutcome {
  state: TableState;
  /**
   * Load the page again at the same place ({@link pageQuery}): a row left and older jobs are past
   * it (back-fill), or the event cannot tell whether the job was listed before (the counts).
   */
  reload: boolean;
}

/** The table once the server answered `page` for a load at `top` (or a step to Newer or Older). */
export function tableAt(page: JobPage, top: number | undefined, arrived: readonly number[] = []): TableState {
  // A page with nothing newer is the newest, wherever it was reached from: new jobs join its top.
  if (page.newer === 0) return { page, top: undefined, arrived: [] };
  const newest = page.rows[0];
  return { page, top: newest === undefined ? top : newest.pk + 1, arrived };
}

/** The query that loads the table again at the same place. */
export function pageQuery(state: Pick<TableState, 'top'>): { before?: number } {
  return state.top === undefined ? {} : { before: state.top };
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
 * What the job may have been before the feed's `event` left it as `now`, from the server's
 * transitions (`store/jobs.ts`) and deletions; undefined for an event this page does not know.
 */
function before(event: string, now: JobSummary): readonly JobSummary[] | undefined {
  const inState = (...states: JobSummary['state'][]) => states.map((state) => ({ ...now, state }));
  switch (event) {
    case 'created':
      return [];
    case 'acquire':
    case 'release':
    case 'progress':
      return [now];
    case 'start':
      return inState('created');
    case 'finish':
    case 'error':
      return inState('running');
    case 'reset':
      return inState('errored');
    case 'abort':
    case 'cancel':
      return inState('created', 'running', 'errored');
    case 'delete':
      return [{ ...now, deleted: false }];
    case 'reinstate':
      return [{ ...now, deleted: true }];
    // The job as it was: the row is gone.
    case 'hard-delete':
      return [now];
    default:
      return undefined;
  }
}

/** Whether the filter lists the job after `event` (a hard-deleted job is listed nowhere). */
function listedAfter(event: string, job: JobSummary, view: TableView): boolean {
  return event !== 'hard-delete' && listedBy(job, view);
}

/** `page` with its counts set and its paging buttons following them. */
function counted(page: JobPage, rows: JobSummary[], total: number, newer: number): JobPage {
  return { ...page, rows, total, newer, has_newer: newer > 0, has_older: total - newer - rows.length > 0 };
}

/** The table once `job` is as the feed's `event` says. */
export function withJob(table: TableState, job: JobSummary, view: TableView, event: string): FeedOutcome {
  const { page } = table;
  const listed = listedAfter(event, job, view);
  const index = page.rows.findIndex((row) => row.pk === job.pk);
  if (index >= 0) {
    const rows = page.rows.slice();
    if (listed) {
      rows[index] = job;
      return { state: { ...table, page: { ...page, rows } }, reload: false };
    }
    rows.splice(index, 1);
    const next = counted(page, rows, page.total - 1, page.newer);
    // Older jobs past the page: the next of them moves up into it.
    return { state: { ...table, page: next }, reload: next.has_older };
  }
  // Not on this page: whether it was listed before (on another page, so counted) decides the counts.
  const was = before(event, job)?.map((b) => listedBy(b, view));
  if (was === undefined || was.some((w) => w !== was[0])) return { state: table, reload: true };
  const wasListed = was[0] === true;
  if (wasListed === listed) return { state: table, reload: false };
  const change = listed ? 1 : -1;
  const total = page.total + change;
  // Above the page's place, not its first row: a reload at that place would show a job between the
  // two (its first row may have left since it was loaded).
  if (table.top !== undefined && job.pk >= table.top) {
    // Newer than a page that is not the newest: counted, and told in the notice; the rows stay.
    const arrived = listed ? [...table.arrived, job.pk] : table.arrived.filter((pk) => pk !== job.pk);
    const newer = page.newer + change;
    const next = counted(page, page.rows, total, newer);
    // Nothing newer left: this is now the newest page.
    return { state: newer === 0 ? tableAt(next, undefined) : { ...table, page: next, arrived }, reload: false };
  }
  const oldest = page.rows.at(-1)?.pk;
  const belowRows = oldest !== undefined && job.pk < oldest;
  if (!listed || (belowRows && page.rows.length >= view.pageSize)) {
    // Left the filter from an older page, or entered it past a full page: only the counts change.
    return { state: { ...table, page: counted(page, page.rows, total, page.newer) }, reload: false };
  }
  // Entered the filter among the page's rows, or below them on a page with room: in its place by pk.
  const at = page.rows.findIndex((row) => row.pk < job.pk);
  const rows = page.rows.slice();
  rows.splice(at < 0 ? rows.length : at, 0, job);
  return { state: { ...table, page: counted(page, rows.slice(0, view.pageSize), total, page.newer) }, reload: false };
}

/** A feed event: the job as the event left it. */
export interface FeedEvent {
  event: string;
  job: JobSummary;
}

/**
 * The table a load's answer made, with the feed's events that arrived while the load was on its way.
 * The server computed the answer at some moment of the flight, so each of those events may or may
 * not be in it. A row of the event's job takes the event's summary: the feed tells a job's events in
 * order, so the last one that came is the latest (were the answer newer still, the event that made it
 * so is on its way). An event that could have moved its job into or out of the answer's rows, or
 * changed its counts, cannot be told from the answer alone: the table is loaded again.
 */
export function settled(table: TableState, during: readonly FeedEvent[], view: TableView): FeedOutcome {
  let rows: JobSummary[] | undefined;
  let reload = false;
  for (const { event, job } of during) {
    const listed = listedAfter(event, job, view);
    const index = (rows ?? table.page.rows).findIndex((row) => row.pk === job.pk);
    if (index >= 0) {
      if (!listed) reload = true;
      else (rows ??= table.page.rows.slice())[index] = job;
      continue;
    }
    // Listed before and after alike (a created job never was): nothing the answer could miss.
    const was = before(event, job)?.map((b) => listedBy(b, view));
    if (was === undefined || (was.length === 0 ? listed : was.some((w) => w !== listed))) reload = true;
  }
  return { state: rows ? { ...table, page: { ...table.page, rows } } : table, reload };
}

/**
 * What the page does with one frame of the feed: apply a job's event, or load the table again. A
 * `resync` (the server may have missed events), a frame this page does not know (one a newer server
 * sends to a page loaded before its upgrade) and a frame it cannot read all load again: whatever the
 * server meant, the table as loaded now is right.
 */
export function feedFrameAction(data: unknown): { apply: FeedFrame } | { reload: true } {
  let frame: unknown;
  try {
    frame = typeof data === 'string' ? JSON.parse(data) : undefined;
  } catch {
    return { reload: true };
  }
  if (isJobFrame(frame)) return { apply: frame };
  return { reload: true };
}

function isJobFrame(frame: unknown): frame is FeedFrame {
  if (typeof frame !== 'object' || frame === null) return false;
  const { type, event, job } = frame as Record<string, unknown>;
  return type === 'job' && typeof event === 'string' && typeof job === 'object' && job !== null && typeof (job as { pk?: unknown }).pk === 'number';
}
