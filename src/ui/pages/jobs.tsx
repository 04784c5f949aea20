/**
 * The jobs table: newest first, filtered by state and template, paged by pk (`/v1/ufdl-agent/jobs/
 * table`), and kept current by the live feed (`/v1/ufdl-agent/events`, `table-feed.ts`): rows on
 * the page change in place, jobs that enter the filter take their place (at the top of the newest
 * page; on another page a "N newer jobs" notice counts them), jobs that leave it go and the next
 * older job moves up.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TemplateJson } from '../../protocol/wire.js';
import { api, reconnectingSocket } from '../api.js';
import { LoadError, ProgressBar, StateBadge } from '../components/bits.js';
import { formatAge, runTime } from '../format.js';
import { feedFrameAction, pageQuery, settled, tableAt, withJob, type FeedEvent, type TableState } from '../table-feed.js';
import type { JobPage } from '../types.js';

const PAGE_SIZE = 50;
const STATES = ['', 'active', 'created', 'running', 'finished', 'errored', 'cancelled', 'ended'] as const;

type Query = { before?: number; after?: number };
type Flight = { again: boolean; during: FeedEvent[] };

export function JobsPage() {
  const [state, setState] = useState<string>('');
  const [template, setTemplate] = useState<number | undefined>(undefined);
  const [table, setTable] = useState<TableState | null>(null);
  const [templates, setTemplates] = useState<TemplateJson[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [, setTick] = useState(0);
  // The feed's handler and the loads read and write the table here, in the order things happen;
  // the state above is what the page renders.
  const current = useRef<TableState | null>(null);
  /** Bumped by every move to another page or filter: an answer for an earlier one is dropped. */
  const place = useRef(0);
  /**
   * The one load under way (a move, or a reload at the same place): `during`, the feed's events that
   * came while it was on its way, which its answer may or may not show (`settled`); `again`, a reload
   * asked for meanwhile, made once it has landed.
   */
  const loading = useRef<Flight | null>(null);

  const show = (next: TableState) => {
    current.current = next;
    setTable(next);
    setError(null);
  };

  useEffect(() => {
    api.call<TemplateJson[]>('POST', '/v1/job-templates/list', { json: { order_by: [{ field: 'name' }] } }).then(setTemplates, setError);
    // Ages and durations move on by themselves.
    const timer = window.setInterval(() => setTick((t) => t + 1), 5000);
    return () => window.clearInterval(timer);
  }, []);

  /** Load one page, the only load under way; its answer is dropped if the table moved meanwhile. */
  const fetchPage = (query: Query, then: (page: JobPage) => void) => {
    const at = place.current;
    const flight: Flight = { again: false, during: [] };
    loading.current = flight;
    api
      .call<JobPage>('POST', '/v1/ufdl-agent/jobs/table', {
        json: { ...(state ? { state } : {}), ...(template !== undefined ? { template } : {}), ...query, limit: PAGE_SIZE },
      })
      .then(
        (page) => {
          if (place.current !== at || loading.current !== flight) return;
          loading.current = null;
          then(page);
          // `then` may have gone on to another load (Newer reached the newest jobs), asked for after
          // the events so far: its answer shows them, and the reload asked for waits for it.
          const following = loading.current as Flight | null;
          if (following) {
            following.again ||= flight.again;
            return;
          }
          const shown = current.current;
          const outcome = shown && settled(shown, flight.during, { state, template, pageSize: PAGE_SIZE });
          if (outcome && outcome.state !== shown) show(outcome.state);
          if (flight.again || outcome?.reload) reload();
        },
        (err: unknown) => {
          if (loading.current === flight) loading.current = null;
          setError(err);
        },
      );
  };

  /** Go to another page (or the first page of another filter): `query`'s answer, placed below `top`. */
  const go = (query: Query, top?: number) => {
    place.current++;
    fetchPage(query, (page) => {
      if (query.after !== undefined && page.newer === 0 && page.rows.length < PAGE_SIZE) {
        // Newer reached the newest jobs, fewer than a page of them: the newest page, full.
        go({});
        return;
      }
      show(tableAt(page, top));
    });
  };

  /** Load the table again where it is (a back-fill, counts the page could not tell). */
  const reload = () => {
    const shown = current.current;
    if (loading.current || !shown) {
      if (loading.current) loading.current.again = true;
      return;
    }
    fetchPage(pageQuery(shown), (page) => {
      const now = current.current ?? shown;
      show(tableAt(page, now.top, now.arrived));
    });
  };

  useEffect(() => {
    // Nothing of the other filter's table applies to this one.
    current.current = null;
    go({});
  }, [state, template]);

  // Pushed updates: every job's creation, transitions, deletion and reinstatement.
  useEffect(() => {
    // A frame the closed socket of another filter still delivers is not this filter's to apply.
    let live = true;
    const socket = reconnectingSocket(() => api.socketTarget('/v1/ufdl-agent/events'), {
      // Anything may have happened while the feed was away.
      open: () => live && reload(),
      message: (event) => {
        if (!live) return;
        // A `resync` (the server may have missed events) or a frame this page cannot read: load again.
        const action = feedFrameAction(event.data);
        if ('reload' in action) {
          reload();
          return;
        }
        const frame = action.apply;
        // A load on its way may or may not show this event: it is settled when the load lands.
        loading.current?.during.push({ event: frame.event, job: frame.job });
        const shown = current.current;
        if (!shown) return;
        const outcome = withJob(shown, frame.job, { state, template, pageSize: PAGE_SIZE }, frame.event);
        if (outcome.state !== shown) show(outcome.state);
        if (outcome.reload) reload();
      },
    });
    return () => {
      live = false;
      socket.close();
    };
  }, [state, template]);

  const page = table?.page ?? null;
  const rows = page?.rows ?? [];
  const arrived = table?.top !== undefined ? table.arrived.length : 0;
  return (
    <section class="panel" aria-labelledby="jobs-title">
      <div class="toolbar">
        <h2 id="jobs-title">Jobs</h2>
        <label>
          State
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value)}>
            {STATES.map((s) => (
              <option value={s}>{s === '' ? 'all' : s}</option>
            ))}
          </select>
        </label>
        <label>
          Template
          <select
            value={template === undefined ? '' : String(template)}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              setTemplate(v === '' ? undefined : Number(v));
            }}
          >
            <option value="">all</option>
            {templates.map((t) => (
              <option value={String(t.pk)}>
                {t.name} v{t.version}
              </option>
            ))}
          </select>
        </label>
        <span class="spacer" />
        <span class="muted" aria-live="polite">
          {page ? `${page.total} job${page.total === 1 ? '' : 's'}` : 'loading…'}
        </span>
        {arrived > 0 && (
          <button type="button" class="secondary" data-testid="newer-jobs" onClick={() => go({})}>
            {arrived} newer job{arrived === 1 ? '' : 's'}
          </button>
        )}
        <button
          type="button"
          class="secondary"
          disabled={!page?.has_newer}
          onClick={() => go(!page || rows.length === 0 || page.newer <= PAGE_SIZE ? {} : { after: rows[0]!.pk })}
        >
          Newer
        </button>
        <button type="button" class="secondary" disabled={!page?.has_older} onClick={() => go({ before: rows.at(-1)!.pk }, rows.at(-1)!.pk)}>
          Older
        </button>
      </div>
      <LoadError error={error} />
      <table aria-describedby="jobs-title">
        <thead>
          <tr>
            <th class="num">Job</th>
            <th>Template</th>
            <th>State</th>
            <th class="num">Node</th>
            <th>Progress</th>
            <th>Age</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((job) => (
            <tr key={job.pk} data-job={job.pk}>
              <td class="num">
                <a href={`#/jobs/${job.pk}`}>{job.pk}</a>
              </td>
              <td>
                {job.template.name} <span class="muted">v{job.template.version}</span>
              </td>
              <td>
                <StateBadge state={job.state} />
              </td>
              <td class="num">{job.node ?? ''}</td>
              <td>
                <ProgressBar value={job.progress} label={`Progress of job ${job.pk}`} />
              </td>
              <td>{formatAge(job.creation_time)}</td>
              <td>{runTime(job.start_time, job.end_time)}</td>
            </tr>
          ))}
          {page && rows.length === 0 && (
            <tr>
              <td colSpan={7} class="muted">
                No jobs match.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
