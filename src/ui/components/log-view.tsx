/**
 * A job's live log: what it holds so far, then new bytes pushed over the log's web-socket as the job
 * prints them. "Follow" keeps the view scrolled to the end; "Pause" stops receiving (the place is
 * kept, "Resume" continues from it without losing a byte). The page keeps at most the last
 * {@link MAX_SHOWN_CHARS} characters; the full log is the `log` output, or `ufdl-agent logs`.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { droppedMarker, LOG_HEADERS, type LogFrame } from '../../protocol/live-log.js';
import { api, reconnectingSocket } from '../api.js';

const MAX_SHOWN_CHARS = 512 * 1024;

export function LogView({ pk, ended }: { pk: number; ended: boolean }) {
  const [text, setText] = useState('');
  const [trimmed, setTrimmed] = useState(false);
  const [status, setStatus] = useState('connecting…');
  const [follow, setFollow] = useState(true);
  const [paused, setPaused] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  const offset = useRef(0);
  const maxBytes = useRef(0);
  const started = useRef(false);
  const buffer = useRef('');
  const pre = useRef<HTMLPreElement>(null);

  const append = (chunk: string) => {
    let next = buffer.current + chunk;
    if (next.length > MAX_SHOWN_CHARS) {
      next = next.slice(next.length - MAX_SHOWN_CHARS);
      setTrimmed(true);
    }
    buffer.current = next;
    setText(next);
  };

  // What the log holds so far, once; then followed live unless paused.
  useEffect(() => {
    let stop = () => {};
    let cancelled = false;
    const decoder = new TextDecoder();
    const start = async () => {
      if (!started.current) {
        const response = await fetch(`/v1/jobs/${pk}/log?offset=0`, { headers: { authorization: `Bearer ${await api.token()}` } });
        if (!response.ok) {
          const body = (await response.json().catch(() => ({}))) as { detail?: string };
          setRefused(body.detail ?? `the server answered ${response.status}`);
          return;
        }
        const bytes = new Uint8Array(await response.arrayBuffer());
        if (cancelled) return;
        started.current = true;
        offset.current = Number(response.headers.get(LOG_HEADERS.offset) ?? 0) + bytes.length;
        maxBytes.current = Number(response.headers.get(LOG_HEADERS.maxBytes) ?? 0);
        append(decoder.decode(bytes, { stream: true }));
      }
      if (paused || cancelled) return;
      const socket = reconnectingSocket(
        () => api.socketTarget(`/v1/jobs/${pk}/log`, { offset: offset.current }),
        {
          open: () => setStatus('live'),
          // 1008: refused for good (the job was hard-deleted, the credentials revoked): no reconnect comes.
          close: (event) => setStatus((s) => (s === 'ended' ? s : event.code === 1008 ? `closed: ${event.reason || 'refused by the server'}` : 'reconnecting…')),
          message: (event) => {
            if (typeof event.data !== 'string') {
              const bytes = new Uint8Array(event.data as ArrayBuffer);
              offset.current += bytes.length;
              append(decoder.decode(bytes, { stream: true }));
              return;
            }
            const frame = JSON.parse(event.data) as LogFrame;
            if (frame.type === 'start') {
              offset.current = frame.offset;
              maxBytes.current = frame.max_bytes ?? 0;
            } else if (frame.type === 'dropped') {
              append(droppedMarker(frame.from, frame.to, maxBytes.current));
              offset.current = frame.to;
            } else if (frame.type === 'reset') {
              offset.current = 0;
              buffer.current = '';
              setText('');
            } else if (frame.type === 'end') setStatus('ended');
          },
        },
        true,
      );
      stop = () => socket.close();
    };
    void start().catch((err: unknown) => setRefused(err instanceof Error ? err.message : String(err)));
    return () => {
      cancelled = true;
      stop();
    };
  }, [pk, paused]);

  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  if (refused) return <p class="muted">The log is not available: {refused}</p>;
  return (
    <div>
      <div class="toolbar">
        <label class="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
          Follow
        </label>
        <button type="button" class="secondary" onClick={() => setPaused(!paused)} disabled={status === 'ended'} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span class="muted" aria-live="polite">
          {paused ? 'paused' : ended && status !== 'live' ? 'ended' : status} · {offset.current} bytes
        </span>
      </div>
      {trimmed && <p class="muted">Earlier output is not shown here; download the log output for all of it.</p>}
      <pre class="log" ref={pre} tabIndex={0} aria-label={`Log of job ${pk}`} data-testid="log">
        {text}
      </pre>
    </div>
  );
}
