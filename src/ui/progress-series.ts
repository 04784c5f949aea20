/**
 * The job page's curves from its progress history: one series for the progress itself, and one per
 * number in the progress metadata (loss, accuracy, …), by the metadata's own (dotted) key. A
 * metadata number whose key is `progress` is a curve of its own too, never points mixed into the
 * job's progress.
 */
import type { ProgressPoint } from './types.js';

export interface Series {
  name: string;
  points: { t: number; v: number }[];
}

/** The name of the job's own progress curve. */
const PROGRESS = 'progress';

export function seriesOf(points: readonly ProgressPoint[]): Series[] {
  const progress: Series = { name: PROGRESS, points: [] };
  const reported = new Map<string, Series>();
  for (const point of points) {
    progress.points.push({ t: point.t, v: point.p });
    for (const [key, v] of Object.entries(point.d)) {
      let series = reported.get(key);
      if (!series) reported.set(key, (series = { name: key === PROGRESS ? `${PROGRESS} (reported)` : key, points: [] }));
      series.points.push({ t: point.t, v });
    }
  }
  return [progress, ...reported.values()];
}
