/**
 * One small line chart in SVG (no charting library): a series of (time, value) points scaled to
 * the box, with its first and last time and its range written on the axes. The job page draws one
 * per number in the progress metadata (loss, accuracy, …) and one for the progress itself.
 */
import type { Series } from '../progress-series.js';

const W = 300;
const H = 150;
const PAD = { left: 40, right: 8, top: 8, bottom: 18 };

export function Chart({ series }: { series: Series }) {
  const { points } = series;
  const last = points.at(-1);
  const id = `chart-${series.name.replace(/[^a-z0-9]/gi, '-')}`;
  if (points.length === 0) return null;
  const t0 = points[0]!.t;
  const t1 = Math.max(last!.t, t0 + 1);
  let lo = Math.min(...points.map((p) => p.v));
  let hi = Math.max(...points.map((p) => p.v));
  if (hi === lo) {
    hi += Math.abs(hi) * 0.05 || 0.5;
    lo -= Math.abs(lo) * 0.05 || 0.5;
  }
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - ((v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  return (
    <figure class="chart" data-series={series.name}>
      <figcaption id={id}>
        {series.name}: {formatNumber(last!.v)} <span class="muted">({points.length} points)</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={id} preserveAspectRatio="none">
        <line class="axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} />
        <text x={PAD.left - 4} y={PAD.top + 8} text-anchor="end">{formatNumber(hi)}</text>
        <text x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">{formatNumber(lo)}</text>
        <text x={PAD.left} y={H - 4}>{new Date(t0).toLocaleTimeString()}</text>
        <text x={W - PAD.right} y={H - 4} text-anchor="end">{new Date(t1).toLocaleTimeString()}</text>
        <path class="line" d={path} />
      </svg>
    </figure>
  );
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3);
}
