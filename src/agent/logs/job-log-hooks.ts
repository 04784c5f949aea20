/**
 * The two places a job meets its live log: supervision starts a {@link LiveLogStream} beside the
 * child (and stops it when the child ends), and the finish flushes what is left before it builds the
 * `log` output — from the journalled offset, so recovery after a crash flushes the same way.
 */
import type { JobDir } from '../child/job-dir.js';
import { writeJobLog } from '../outputs/job-log.js';
import type { OutputFile } from '../outputs/scan.js';
import type { JournalPort, LogPort, NodeApi } from '../ports.js';
import { LiveLogStream, type LiveLogSettings } from './live-log-stream.js';

/** What a job's live log needs from the runner's dependencies. */
export interface JobLogDeps {
  api: Pick<NodeApi, 'appendLog'>;
  journal: Pick<JournalPort, 'liveLog' | 'recordLiveLog'>;
  /** null: the server has no live logs (the reference), or they are turned off (`logs.live`). */
  liveLog: LiveLogSettings | null;
  options: { logMaxBytes: number };
}

/** Start streaming the job's console output, when the server takes live logs. */
export function startLiveLog(deps: JobLogDeps, jobPk: number, dir: JobDir, log: Pick<LogPort, 'debug' | 'info' | 'warn'>): LiveLogStream | undefined {
  if (deps.liveLog === null) return undefined;
  const stream = new LiveLogStream(jobPk, dir.consolePath, { api: deps.api, journal: deps.journal, log }, deps.liveLog);
  stream.start();
  return stream;
}

/**
 * After the child has ended: send the rest of the live log (when streaming), then write the `log`
 * output with the same cap, so that the two are byte for byte the same.
 */
export async function finishJobLog(deps: JobLogDeps, jobPk: number, dir: JobDir, log: Pick<LogPort, 'debug' | 'info' | 'warn'>, signal?: AbortSignal): Promise<OutputFile> {
  let maxBytes = deps.journal.liveLog(jobPk)?.maxBytes ?? deps.liveLog?.maxBytes ?? deps.options.logMaxBytes;
  if (deps.liveLog !== null) {
    const stream = new LiveLogStream(jobPk, dir.consolePath, { api: deps.api, journal: deps.journal, log }, deps.liveLog);
    maxBytes = stream.maxBytes;
    const complete = await stream.flush(signal);
    if (!complete) log.warn({ sent: stream.sent }, 'live log: not every byte reached the server; the log output has them all');
  }
  return writeJobLog(dir, maxBytes);
}
