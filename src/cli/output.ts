/**
 * How commands print: aligned tables, `--json`, relative ages, and the live view of a job (a
 * redrawn progress bar on a terminal, one plain line per change otherwise, so that logs and pipes
 * stay readable).
 */

/** Print `value` as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table column: its heading and whether its cells are right-aligned (numbers). */
export interface Column {
  title: string;
  align?: 'left' | 'right';
}

/**
 * Format rows as an aligned table with a heading line. Cells are padded to the widest value of their
 * column; the last column is not padded, so lines carry no trailing spaces.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) => Math.max(column.title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        if (i === cells.length - 1 && columns[i]?.align !== 'right') return cell;
        return columns[i]?.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title.toUpperCase())), ...rows.map((row) => line(columns.map((_, i) => row[i] ?? '')))].join('\n') + '\n';
}

export function printTable(columns: readonly Column[], rows: readonly (readonly string[])[]): void {
  process.stdout.write(formatTable(columns, rows));
}

/** A duration as the largest whole unit: `42s`, `5m`, `3h`, `2d`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** The age of an ISO timestamp, `?` when it does not parse. */
export function formatAge(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '?' : formatDuration(now - t);
}

/** `0.4213` → `42%`. */
export function formatPercent(value: number): string {
  return `${Math.floor(Math.min(1, Math.max(0, value)) * 100)}%`;
}

/** A byte count as `512 B`, `1.5 KiB`, `3.2 GiB` (shared with the dashboard). */
export { formatBytes } from '../protocol/dashboard.js';

/**
 * The live view of one job. On a terminal, `progress()` redraws one line (`\r`) with a bar; events
 * (`line()`) end the bar's line first. Elsewhere every event and every change of the whole percent is
 * one plain line.
 */
export class LiveView {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #barShown = false;
  #lastPercent: number | undefined;
  #lastStatus: string | undefined;
  #bar = '';
  #pendingLine = '';

  constructor(stream: NodeJS.WriteStream, tty = stream.isTTY === true && process.env.TERM !== 'dumb') {
    this.#stream = stream;
    this.#tty = tty;
  }

  /** An event worth its own line (a transition, a message). */
  line(text: string): void {
    this.#endBar();
    this.#stream.write(`${text}\n`);
  }

  /**
   * The job's progress in [0, 1], a short status word (`running`), and optionally what moved it
   * (a workflow's child: `train 40%`), shown after the percentage.
   */
  progress(pk: number, value: number, status: string, detail?: string): void {
    const percent = Math.floor(Math.min(1, Math.max(0, value)) * 100);
    const shownStatus = detail === undefined ? status : `${status} (${detail})`;
    if (percent === this.#lastPercent && shownStatus === this.#lastStatus) return;
    this.#lastPercent = percent;
    this.#lastStatus = shownStatus;
    if (!this.#tty) {
      this.#stream.write(`job ${pk}: ${status} ${percent}%${detail === undefined ? '' : ` (${detail})`}\n`);
      return;
    }
    const columns = this.#stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - 30));
    const filled = Math.round((percent / 100) * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    this.#bar = `job ${pk} [${bar}] ${String(percent).padStart(3)}% ${shownStatus}`;
    this.#stream.write(`\r\x1b[2K${this.#bar}`);
    this.#barShown = true;
  }

  /**
   * Output that scrolls above the progress bar (a job's live log): complete lines are printed with
   * the bar redrawn under them; an unfinished line waits for its end (or for {@link close}).
   */
  above(chunk: string): void {
    if (!this.#tty) {
      this.#stream.write(chunk);
      return;
    }
    const text = this.#pendingLine + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    this.#pendingLine = text.slice(cut);
    if (cut === 0) return;
    if (this.#barShown) this.#stream.write('\r\x1b[2K');
    this.#stream.write(text.slice(0, cut));
    if (this.#barShown) this.#stream.write(this.#bar);
  }

  /** Leave the terminal on a fresh line. */
  close(): void {
    if (this.#pendingLine !== '') {
      this.above('\n');
    }
    this.#endBar();
  }

  #endBar(): void {
    if (this.#barShown) {
      this.#stream.write('\n');
      this.#barShown = false;
      // Redraw the bar at the next update even if the value has not changed.
      this.#lastPercent = undefined;
    }
  }
}
