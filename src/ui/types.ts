/** Shapes of the dashboard routes (`src/server/dashboard/`); the reference's shapes come from protocol/wire.ts. */
import type { JobJson } from '../protocol/wire.js';

export type JobState = 'created' | 'running' | 'finished' | 'errored' | 'cancelled';

export interface JobSummary {
  pk: number;
  template: { pk: number; name: string; version: number };
  state: JobState;
  node: number | null;
  progress: number;
  creator: number | null;
  description: string;
  creation_time: string;
  start_time: string | null;
  end_time: string | null;
  error: string | null;
  deleted: boolean;
}

export interface JobPage {
  rows: JobSummary[];
  total: number;
  has_older: boolean;
  has_newer: boolean;
}

export interface FeedFrame {
  type: 'job';
  event: string;
  job: JobSummary;
  data?: Record<string, unknown>;
}

export interface JobDetail {
  job: JobJson;
  summary: JobSummary;
  outputs: { pk: number; name: string; type: string; size: number; creation_time: string }[];
  creator: string | null;
}

export interface ProgressPoint {
  t: number;
  p: number;
  d: Record<string, number>;
}
