/**
 * Shapes of the dashboard's routes (an extension; docs/COMPATIBILITY.md, "Extensions"): the server's
 * `dashboard/` modules build them, the web dashboard (`src/ui/`) reads them.
 */

export type JobSummaryState = 'created' | 'running' | 'finished' | 'errored' | 'cancelled';

/** A row of the jobs table, and the payload of the live feed. */
export interface JobSummary {
  pk: number;
  template: { pk: number; name: string; version: number };
  state: JobSummaryState;
  node: number | null;
  progress: number;
  creator: number | null;
  description: string;
  creation_time: string;
  start_time: string | null;
  end_time: string | null;
  /** The first line of the error, at most 200 characters. */
  error: string | null;
  deleted: boolean;
}

/** `POST /v1/ufdl-agent/jobs/table`: one page, newest first. */
export interface JobPage {
  rows: JobSummary[];
  /** Jobs matching the filter (all pages). */
  total: number;
  /** Of those, the jobs newer than this page's rows (0 on the newest page); `total - newer - rows.length` are older. */
  newer: number;
  /** `total - newer - rows.length > 0`. */
  has_older: boolean;
  /** `newer > 0`. */
  has_newer: boolean;
}

/** A frame of the feed `GET /v1/ufdl-agent/events`. */
export interface FeedFrame {
  type: 'job';
  /**
   * `created`, the transition (`start`, `progress`, `finish`, …), or what happened to whether the
   * job is listed: `delete` (soft), `reinstate`, `hard-delete` (gone: no table lists it any more).
   */
  event: string;
  /** The job as the event left it; for `hard-delete`, as it was before. */
  job: JobSummary;
  /** The progress metadata of a `progress` event. */
  data?: Record<string, unknown>;
}

/**
 * A frame of the feed that carries no job: the server may have missed events (a replica that did not
 * hear the others for a while), and the page loads its table again.
 */
export interface FeedResyncFrame {
  type: 'resync';
}

/** Whatever the feed sends. */
export type FeedMessage = FeedFrame | FeedResyncFrame;

/** A point of `GET /v1/jobs/{pk}/progress-history`. */
export interface ProgressPoint {
  /** When, in ms since the epoch. */
  t: number;
  /** Progress in [0, 1]. */
  p: number;
  /** The numeric values of the progress metadata, by (dotted) key. */
  d: Record<string, number>;
}

/** A byte count as `512 B`, `1.5 KiB`, `3.2 GiB` (the CLI and the dashboard print sizes alike). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
