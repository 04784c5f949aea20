/** Small formatting helpers shared by the pages. */
export { formatBytes } from '../protocol/dashboard.js';

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export function formatAge(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '?' : `${formatDuration(now - t)} ago`;
}

/** How long a job ran (or has been running). */
export function runTime(start: string | null, end: string | null, now = Date.now()): string {
  if (!start) return '';
  return formatDuration((end ? Date.parse(end) : now) - Date.parse(start));
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A typed value as one short line. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}
