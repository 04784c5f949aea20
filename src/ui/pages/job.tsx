/**
 * One job: what it is (template, parameters, inputs), how it goes (state, progress over time with a
 * curve per number of the progress metadata, the live log), what it made (outputs with sizes and
 * downloads), and for admins cancel, abort and reset, each confirmed first. Live through the job's
 * own web-socket channel. (A workflow's parent and children will have their section here.)
 */
import { useEffect, useState } from 'preact/hooks';
import type { JobNotification } from '../../protocol/wire.js';
import { api, reconnectingSocket, type Session } from '../api.js';
import { LoadError, ProgressBar, StateBadge } from '../components/bits.js';
import { Chart } from '../components/chart.js';
import { ConfirmDialog, type ConfirmRequest } from '../components/confirm.js';
import { LogView } from '../components/log-view.js';
import { formatBytes, formatTime, formatValue, runTime } from '../format.js';
import { seriesOf } from '../progress-series.js';
import type { JobDetail, ProgressPoint } from '../types.js';

/** At most this many points are kept per curve (the server thins long histories too). */
const MAX_POINTS = 5000;

export function JobPage({ pk, session }: { pk: number; session: Session }) {
  const [detail, setDetail] = useState<JobDetail | null>(null);
  const [points, setPoints] = useState<ProgressPoint[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);

  const reload = () => api.call<JobDetail>('GET', `/v1/ufdl-agent/jobs/${pk}`).then(setDetail, setError);
  useEffect(() => {
    void reload();
    api.call<ProgressPoint[]>('GET', `/v1/jobs/${pk}/progress-history`).then(setPoints, () => undefined);
    const socket = reconnectingSocket(() => api.socketTarget(`/v1/jobs/${pk}`), {
      message: (event) => {
        const message = JSON.parse(event.data as string) as JobNotification;
        if (message.transition === 'progress') {
          const point: ProgressPoint = { t: Date.now(), p: message.progress, d: numbers(message.transition_data) };
          setPoints((current) => [...current, point].slice(-MAX_POINTS));
          setDetail((d) => (d ? { ...d, summary: { ...d.summary, progress: message.progress, state: 'running' } } : d));
        } else {
          void reload();
        }
      },
      // The job was hard-deleted (or the session's credentials revoked): show why the page is gone.
      close: (event) => {
        if (event.code === 1008) {
          api.call<JobDetail>('GET', `/v1/ufdl-agent/jobs/${pk}`).then(setDetail, (err: unknown) => {
            setDetail(null);
            setError(err);
          });
        }
      },
    });
    return () => socket.close();
  }, [pk]);

  if (!detail) return <LoadError error={error ?? null} />;
  const { job, summary } = detail;
  const act = (title: string, text: string, confirmText: string, run: () => Promise<unknown>) =>
    setConfirm({
      title,
      text,
      confirm: confirmText,
      onConfirm: () => {
        setActionError(null);
        run().then(reload, setActionError);
      },
    });
  const mayCancel = (session.isAdmin || job.creator === session.userPk) && (summary.state === 'created' || summary.state === 'running');
  const active = summary.state === 'created' || summary.state === 'running';
  return (
    <>
      <section class="panel" aria-labelledby="job-title">
        <div class="toolbar">
          <h2 id="job-title">
            Job {job.pk} <StateBadge state={summary.state} />
          </h2>
          <span class="spacer" />
          {mayCancel && (
            <button type="button" class="danger" onClick={() => act(`Cancel job ${pk}?`, 'The job stops and does not run again.', 'Cancel the job', () => api.call('DELETE', `/v1/jobs/${pk}/cancel`))}>
              Cancel
            </button>
          )}
          {session.isAdmin && active && job.node !== null && (
            <button type="button" class="danger" onClick={() => act(`Abort job ${pk}?`, `Node ${job.node} loses the job; it goes back to the queue and starts again from the beginning on any node.`, 'Abort the job', () => api.call('DELETE', `/v1/jobs/${pk}/abort`))}>
              Abort
            </button>
          )}
          {session.isAdmin && summary.state === 'errored' && job.node !== null && (
            <button
              type="button"
              class="danger"
              onClick={() =>
                act(`Reset job ${pk}?`, 'The job goes back to the queue and runs again on any node; its outputs are set aside.', 'Reset the job', async () => {
                  // Reset keeps the job with its node (as the reference does); release gives it to any node.
                  await api.call('DELETE', `/v1/jobs/${pk}/reset`, { nodeId: job.node! });
                  await api.call('DELETE', `/v1/jobs/${pk}/release`, { nodeId: job.node! });
                })
              }
            >
              Reset
            </button>
          )}
        </div>
        <LoadError error={actionError} />
        <ProgressBar value={summary.progress} label={`Progress of job ${pk}`} />
        <dl class="facts">
          <dt>Template</dt>
          <dd>
            <a href={`#/templates/${job.template.pk}`}>{job.template.name}</a> v{job.template.version}
          </dd>
          {job.description && (
            <>
              <dt>Description</dt>
              <dd>{job.description}</dd>
            </>
          )}
          <dt>Created</dt>
          <dd>
            {formatTime(job.creation_time)} by {detail.creator ?? 'unknown'}
          </dd>
          <dt>Node</dt>
          <dd>{job.node ?? 'none'}</dd>
          <dt>Started</dt>
          <dd>{formatTime(job.start_time) || 'not yet'}</dd>
          <dt>Ended</dt>
          <dd>{formatTime(job.end_time) || 'not yet'}</dd>
          <dt>Run time</dt>
          <dd>{runTime(job.start_time, job.end_time)}</dd>
          {job.parent !== null && (
            <>
              <dt>Parent</dt>
              <dd>
                <a href={`#/jobs/${job.parent}`}>job {job.parent}</a>
              </dd>
            </>
          )}
          {job.error_reason && (
            <>
              <dt>Error</dt>
              <dd>
                <pre class="log">{job.error_reason}</pre>
              </dd>
            </>
          )}
        </dl>
      </section>

      <section class="panel" aria-labelledby="values-title">
        <h3 id="values-title">Parameters and inputs</h3>
        <Values title="Inputs" values={job.input_values} />
        <Values title="Parameters" values={job.parameter_values ?? {}} />
      </section>

      <section class="panel" aria-labelledby="progress-title">
        <h3 id="progress-title">Progress</h3>
        {points.length === 0 ? <p class="muted">No progress reported yet.</p> : (
          <div class="charts">
            {seriesOf(points).map((s) => (
              <Chart key={s.name} series={s} />
            ))}
          </div>
        )}
      </section>

      <section class="panel" aria-labelledby="log-title">
        <h3 id="log-title">Log</h3>
        {/* A run of its own per start: a reset job's next run is a new log from 0, and the follower of
            the run before stopped when that run ended (and would resume at its offset, not 0). */}
        <LogView key={job.start_time ?? 'not started'} pk={pk} ended={!active} />
      </section>

      <section class="panel" aria-labelledby="outputs-title">
        <h3 id="outputs-title">Outputs</h3>
        {detail.outputs.length === 0 ? <p class="muted">No outputs yet.</p> : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
                <th class="num">Size</th>
                <th>
                  <span class="visually-hidden">Download</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {detail.outputs.map((o) => (
                <tr key={o.pk}>
                  <td>{o.name}</td>
                  <td>{o.type}</td>
                  <td class="num">{formatBytes(o.size)}</td>
                  <td>
                    <button type="button" class="secondary" aria-label={`Download ${o.name}`} onClick={() => void download(o.pk).catch(setActionError)}>
                      Download
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </>
  );
}

function Values({ title, values }: { title: string; values: Record<string, { value: unknown; type: string }> }) {
  const entries = Object.entries(values);
  return (
    <>
      <h4>{title}</h4>
      {entries.length === 0 ? <p class="muted">none</p> : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Value</th>
            </tr>
          </thead>
          <tbody>
            {entries.map(([name, v]) => (
              <tr key={name}>
                <td>{name}</td>
                <td class="muted">{v.type}</td>
                <td>
                  <code>{formatValue(v.value)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** Download through a one-minute ticket, so the browser streams the file to disk. */
async function download(outputPk: number): Promise<void> {
  const { url } = await api.call<{ url: string }>('POST', `/v1/ufdl-agent/outputs/${outputPk}/ticket`);
  const link = document.createElement('a');
  link.href = url;
  link.download = '';
  document.body.append(link);
  link.click();
  link.remove();
}

/** The numbers of a progress object, flattened (`{"m": {"acc": 1}}` → `m.acc`), as the server keeps them. */
function numbers(data: Record<string, unknown>, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  for (const [k, v] of Object.entries(data)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v)) numbers(v as Record<string, unknown>, key, out);
  }
  return out;
}

