/**
 * Room on the file systems a restarted agent must write to, for journal-failure.ts: a journal write
 * that commits is no proof that the disk has room again. The journal is WAL: rewriting a row appends
 * a frame to a `-wal` file whose blocks are already allocated, so SQLite commits it on a file system
 * with 0 bytes free. An agent that took that for "writable" exited for a restart onto a disk that
 * was still full, failed again, and soon hit systemd's start limit.
 */
import { statSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * The least room a restart needs, whatever the journal's size: recovery writes every unfinished job
 * again, and the WAL grows to about 4 MiB (SQLite's 1000-page auto-checkpoint) before it is folded
 * back; the restarted jobs' logs and outputs need room in the work directory too. 8 MiB covers that
 * WAL twice over, and is still nothing next to a disk that was freed. A journal larger than that
 * needs its own size (journal-failure.ts): recovery may rewrite most of its pages into the WAL.
 * Not `min_free_disk`: an agent restarted below that starts and recovers, it only takes no new jobs.
 */
export const MIN_FREE_BYTES = 8 * 1024 * 1024;

/** Bytes an unprivileged writer may still use on the file system holding `path` (statfs: f_bavail × f_bsize). */
export function freeBytesAt(path: string): number {
  const { bavail, bsize } = statfsSync(path);
  return bavail * bsize;
}

/** The journal's size on disk, with its `-wal` file (0 for a file that is gone). */
export function journalBytes(journalPath: string): number {
  let bytes = 0;
  for (const file of [journalPath, `${journalPath}-wal`]) {
    try {
      bytes += statSync(file).size;
    } catch {
      // No WAL file (checkpointed and removed): nothing to count.
    }
  }
  return bytes;
}

/** A place the agent writes to, named for the log line: "the journal", "the work directory". */
export interface Place {
  name: string;
  path: string;
}

/** A file system with too little room: `freeBytes` is below `neededBytes`. */
export interface Shortfall extends Place {
  freeBytes: number;
  neededBytes: number;
}

/**
 * The first of `places` whose file system has fewer than `neededBytes` free, or null when all have
 * room. Places on one file system (same device) are measured once, as the first of them.
 * `freeBytes` is the measure ({@link freeBytesAt}; tests pass a figure).
 */
export function firstShortfall(places: readonly Place[], neededBytes: number, freeBytes: (path: string) => number = freeBytesAt): Shortfall | null {
  const measured = new Set<number>();
  for (const place of places) {
    const at = nearestExisting(place.path);
    const device = statSync(at).dev;
    if (measured.has(device)) continue;
    measured.add(device);
    const free = freeBytes(at);
    if (free < neededBytes) return { ...place, freeBytes: free, neededBytes };
  }
  return null;
}

/**
 * `path`, or its nearest parent that exists: where a restart creates it again. An operator may free a
 * full disk by removing the work directory itself; measuring only an existing path, the probe then
 * failed on every try and the agent waited for good instead of restarting.
 */
function nearestExisting(path: string): string {
  for (let at = resolve(path); ; at = dirname(at)) {
    try {
      statSync(at);
      return at;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
    }
  }
}
