/**
 * A job's progress, end to end: follow its stdout and stderr, recognise marker lines and the
 * template's regex, and report through a {@link ProgressCoalescer}. The job loop starts one per job
 * and stops it after the child has ended, which delivers the last value.
 *
 * Once a child has printed one marker line, the regex is no longer consulted: the child speaks the
 * contract and owns its progress. Otherwise a regex match on stderr could override the child's
 * final marker on stdout, because the two files are read independently and their relative order
 * is lost (a `2>&1` child has one order, but we keep the streams apart).
 */
import { parseMarkerLine } from './marker.js';
import { LineFollower } from './line-follower.js';
import { ProgressCoalescer } from './coalescer.js';
import { guardParser, regexProgressParser, type GuardedParser } from './regex-parser.js';
import type { ProgressUpdate } from './update.js';

/** Options of {@link JobProgress}. */
export interface JobProgressOptions {
  /** The logs to follow (the job's `console.log`: its stdout and stderr; markers count on both). */
  files: readonly string[];
  /** The template's `progress_regex`, if any. */
  regex?: RegExp | undefined;
  /** At most one report per this many ms. */
  intervalMs: number;
  /** Deliver one report. */
  report: (update: ProgressUpdate) => Promise<void> | void;
  /** A report failed (the job loop may check for cancellation then). */
  onReportError?: (err: unknown, update: ProgressUpdate) => void;
  /** The regex parser threw and is disabled for this job. */
  onParserError?: (err: unknown) => void;
  /**
   * How often the logs are polled.
   * @default 200
   */
  pollMs?: number;
  /**
   * Set when the agent re-attaches to a child that ran while no agent followed it: what the logs
   * already hold is replayed silently (to learn the latest value and whether the child speaks in
   * marker lines) and only that latest value is reported, if it is above `lastReported`, the highest
   * value reported before (from the journal). No report of the attempt ever goes below it.
   */
  resume?: { lastReported: number | null } | undefined;
}

/** See the module comment. */
export class JobProgress {
  readonly #followers: LineFollower[];
  readonly #coalescer: ProgressCoalescer;
  readonly #parser: GuardedParser | undefined;
  #last: ProgressUpdate | undefined;
  #markersSeen = false;
  #replaying = false;
  readonly #resume: { lastReported: number | null } | undefined;
  #started: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(options: JobProgressOptions) {
    this.#resume = options.resume;
    this.#coalescer = new ProgressCoalescer({
      intervalMs: options.intervalMs,
      report: options.report,
      floor: options.resume?.lastReported ?? 0,
      ...(options.onReportError ? { onError: options.onReportError } : {}),
    });
    this.#parser = options.regex
      ? guardParser(regexProgressParser(options.regex), (err) => options.onParserError?.(err))
      : undefined;
    const onLine = (line: string) => this.#onLine(line);
    this.#followers = options.files.map(
      (file) => new LineFollower(file, { onLine, ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }) }),
    );
  }

  /** The latest progress seen in the logs (sent or about to be). */
  get last(): ProgressUpdate | undefined {
    return this.#last;
  }

  /** Counters for status and tests. */
  get stats(): { lines: number; reports: number; parserDisabled: boolean } {
    return {
      lines: this.#followers.reduce((n, f) => n + f.lines, 0),
      reports: this.#coalescer.reports,
      parserDisabled: this.#parser?.disabled ?? false,
    };
  }

  start(): void {
    this.#started ??= (async () => {
      if (this.#resume) await this.#replay(this.#resume.lastReported ?? 0);
      for (const follower of this.#followers) follower.start();
    })();
  }

  /** Read the logs to their end, deliver the final value, stop. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#started;
      await Promise.all(this.#followers.map((f) => f.stop()));
      await this.#coalescer.stop();
    })();
    return this.#stopping;
  }

  /** Replay what the logs hold (no reports), then report the latest value if it is new. */
  async #replay(lastReported: number): Promise<void> {
    this.#replaying = true;
    try {
      await Promise.all(this.#followers.map((f) => f.catchUp()));
    } finally {
      this.#replaying = false;
    }
    if (this.#last && this.#last.progress > lastReported) this.#coalescer.push(this.#last);
  }

  #onLine(line: string): void {
    let update = parseMarkerLine(line);
    if (update) this.#markersSeen = true;
    else if (!this.#markersSeen) update = this.#parser?.(line, this.#last?.progress ?? 0);
    if (!update) return;
    this.#last = update;
    if (!this.#replaying) this.#coalescer.push(update);
  }
}
