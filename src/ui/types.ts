/** Shapes of the dashboard routes (protocol/dashboard.ts) and of the job page's detail route. */
import type { JobSummary } from '../protocol/dashboard.js';
import type { JobJson } from '../protocol/wire.js';

export type { FeedFrame, FeedMessage, JobPage, JobSummary, ProgressPoint, JobSummaryState as JobState } from '../protocol/dashboard.js';

/** `GET /v1/ufdl-agent/jobs/{pk}`. */
export interface JobDetail {
  job: JobJson;
  summary: JobSummary;
  outputs: { pk: number; name: string; type: string; size: number; creation_time: string }[];
  creator: string | null;
}
