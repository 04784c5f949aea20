/**
 * After a journal write failed inside a running job (disk full — often the job's own doing —, an I/O
 * error, a file system remounted read-only): wait until the journal takes a write again. The agent
 * then exits for a restart (agent.ts) rather than exiting at once, because a restart onto a disk that
 * is still full could not open the journal either, and systemd gives up on a unit that fails to
 * start too often; waiting here costs nothing and keeps `/readyz` saying why.
 *
 * "Takes a write" means both: the journal's file system and the work directory's have room
 * (free-space.ts — a write alone can commit on a full disk), and a small real write commits (a
 * file system remounted read-only, an I/O error).
 */
import type { Journal } from '../journal/journal.js';
import type { LogPort } from '../ports.js';
import { retryDelayMs, sleepUnlessAborted } from '../timing.js';
import { MIN_FREE_BYTES, firstShortfall, freeBytesAt, journalBytes } from './free-space.js';

/** Between two probes: from about a second, doubling, at most 30 s (jittered). */
const PROBE_BASE_MS = 1000;
const PROBE_MAX_MS = 30_000;

export interface WritableWait {
  /** The job directories' parent: a restart writes there too, so its file system needs room as well. */
  workDir: string;
  /** Free bytes on the file system holding a path. @default statfs ({@link freeBytesAt}) */
  freeBytes?: (path: string) => number;
}

/**
 * Resolves true once the journal's and the work directory's file systems each have
 * {@link neededFreeBytes} free and a small real write to the journal commits; false when `signal`
 * aborts first (the agent is stopping anyway). Logs the first failed probe, then every tenth.
 */
export async function waitUntilWritable(
  journal: Pick<Journal, 'probeWrite' | 'path'>,
  signal: AbortSignal,
  log: LogPort,
  wait: WritableWait,
): Promise<boolean> {
  const places = [
    { name: 'journal', path: journal.path },
    { name: 'work directory', path: wait.workDir },
  ];
  for (let attempt = 0; ; attempt++) {
    await sleepUnlessAborted(retryDelayMs(attempt, PROBE_BASE_MS, PROBE_MAX_MS), signal);
    if (signal.aborted) return false;
    const loud = attempt % 10 === 0;
    try {
      const short = firstShortfall(places, neededFreeBytes(journal.path), wait.freeBytes ?? freeBytesAt);
      if (short !== null) {
        if (loud) {
          log.warn(
            { attempt, path: short.path, freeBytes: short.freeBytes, neededBytes: short.neededBytes },
            `the ${short.name} file system has ${short.freeBytes} bytes free, waiting for at least ${short.neededBytes}`,
          );
        }
        continue;
      }
      journal.probeWrite();
      return true;
    } catch (err) {
      if (loud) log.warn({ attempt, err: err instanceof Error ? err.message : String(err) }, 'the journal still cannot be written; waiting');
    }
  }
}

/** Room a restart needs: {@link MIN_FREE_BYTES}, or the journal's size when larger (recovery may rewrite most of it into the WAL). */
export function neededFreeBytes(journalPath: string): number {
  return Math.max(MIN_FREE_BYTES, journalBytes(journalPath));
}
