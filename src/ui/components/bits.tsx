/** Small shared pieces: the state badge, the progress bar, a load error. */
import type { JobState } from '../types.js';

export function StateBadge({ state }: { state: JobState }) {
  return <span class={`state ${state}`}>{state}</span>;
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const percent = Math.round(Math.min(1, Math.max(0, value)) * 100);
  return (
    <div class="progress">
      <div class="track" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
        <div class="fill" style={{ width: `${percent}%` }} />
      </div>
      <span class="pct">{percent}%</span>
    </div>
  );
}

export function LoadError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
