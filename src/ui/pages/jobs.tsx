/**
 * The jobs table: newest first, filtered by state and template, paged by pk (`/v1/ufdl-agent/jobs/
 * table`), and kept current by the live feed (`/v1/ufdl-agent/events`, `table-feed.ts`): rows on
 * the page change in place, jobs that enter the filter take their place, jobs that leave it go.
 */
import { useEffect, useState } from 'preact/hooks';
import type { TemplateJson } from '../../protocol/wire.js';
import { api, reconnectingSocket } from '../api.js';
import { LoadError, ProgressBar, StateBadge } from '../components/bits.js';
import { formatAge, runTime } from '../format.js';
import { withJob } from '../table-feed.js';
import type { FeedFrame, JobPage } from '../types.js';

const PAGE_SIZE = 50;
const STATES = ['', 'active', 'created', 'running', 'finished', 'errored', 'cancelled', 'ended'] as const;

type Cursor = { before?: number; after?: number };

export function JobsPage() {
  const [state, setState] = useState<string>('');
  const [template, setTemplate] = useState<number | undefined>(undefined);
  const [cursor, setCursor] = useState<Cursor>({});
  const [page, setPage] = useState<JobPage | null>(null);
  const [templates, setTemplates] = useState<TemplateJson[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [, setTick] = useState(0);

  useEffect(() => {
    api.call<TemplateJson[]>('POST', '/v1/job-templates/list', { json: { order_by: [{ field: 'name' }] } }).then(setTemplates, setError);
    // Ages and durations move on by themselves.
    const timer = window.setInterval(() => setTick((t) => t + 1), 5000);
    return () => window.clearInterval(timer);
  }, []);

  const load = () => {
    const query = { ...(state ? { state } : {}), ...(template !== undefined ? { template } : {}), ...cursor, limit: PAGE_SIZE };
    api.call<JobPage>('POST', '/v1/ufdl-agent/jobs/table', { json: query }).then((p) => {
      setPage(p);
      setError(null);
    }, setError);
  };
  useEffect(load, [state, template, cursor]);

  // Pushed updates: every job's creation and transitions.
  useEffect(() => {
    const firstPage = cursor.before === undefined && cursor.after === undefined;
    const socket = reconnectingSocket(() => api.socketTarget('/v1/ufdl-agent/events'), {
      open: load,
      message: (event) => {
        const frame = JSON.parse(event.data as string) as FeedFrame;
        setPage((current) => {
          if (!current) return current;
          const next = withJob(current, frame.job, { state, template, firstPage, pageSize: PAGE_SIZE }, frame.event);
          if (next !== undefined) return next;
          // The page cannot tell what a reload would show: load it again.
          queueMicrotask(load);
          return current;
        });
      },
    });
    return () => socket.close();
  }, [state, template, cursor]);

  const rows = page?.rows ?? [];
  return (
    <section class="panel" aria-labelledby="jobs-title">
      <div class="toolbar">
        <h2 id="jobs-title">Jobs</h2>
        <label>
          State
          <select value={state} onChange={(e) => { setState((e.target as HTMLSelectElement).value); setCursor({}); }}>
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
              setCursor({});
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
        <button type="button" class="secondary" disabled={!page?.has_newer} onClick={() => setCursor(rows.length ? { after: rows[0]!.pk } : {})}>
          Newer
        </button>
        <button type="button" class="secondary" disabled={!page?.has_older} onClick={() => setCursor({ before: rows.at(-1)!.pk })}>
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
