/**
 * The progress of each job over time, for the dashboard's curves: every `progress` notification
 * appends one line `{"t": ms, "p": progress, "d": {numbers}}` to `progress.jsonl` in the job's
 * live-log attempt directory (store.ts). Only the numeric values of the progress metadata are kept
 * (nested objects flattened to dotted keys), so a line stays small whatever a job sends. A history
 * over {@link MAX_HISTORY_BYTES} is thinned to every other point, so a week-long job keeps its whole
 * curve at a coarser step instead of growing without end.
 */
import { closeSync, fstatSync, open, writeSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProgressPoint } from '../../protocol/dashboard.js';
import type { LiveLogStore, LogKey } from './store.js';

const MAX_HISTORY_BYTES = 2 * 1024 * 1024;
const MAX_KEYS = 32;
const MAX_KEY_LENGTH = 64;

/** The history file of one job's current attempt, and the lines not yet written to it. */
interface HistoryFile {
  attempt: string;
  key: LogKey;
  /**
   * The open file (appending), its size, and when it was last checked for removal; null until the
   * first write, and after a failure or a thinning.
   */
  open: { fd: number; path: string; size: number; checkedAt: number } | null;
  pending: string[];
}

/**
 * At most this many jobs' history files are remembered (their directory ensured, their size known).
 * Past it, the oldest idle half is forgotten at once: forgetting one per point walked the map's
 * deleted slots from its start every time (4 % of the server's CPU under the lifecycle load).
 */
const KNOWN_FILES_MAX = 512;

/** How often an open history file is checked for having been removed under it. */
const REMOVAL_CHECK_MS = 1000;

export class ProgressHistory {
  readonly #store: LiveLogStore;
  #writing: Promise<unknown> = Promise.resolve();
  readonly #files = new Map<number, HistoryFile>();
  /** The files with lines not yet written, in the order they got their first one. */
  #dirty = new Set<HistoryFile>();
  /** The write that takes the lines queued now; null when none is queued. */
  #next: Promise<void> | null = null;

  constructor(store: LiveLogStore) {
    this.#store = store;
  }

  /**
   * Record a point (written in order). Failures are the caller's to log.
   *
   * A busy server records hundreds of points a second: the points that arrive while a write runs are
   * written together by the next one, one append per job, and a job's directory is ensured and its
   * file's size read once per attempt, not per point (each was a round trip through the thread pool,
   * and together they cost a tenth of the server's CPU under the lifecycle load).
   */
  record(key: LogKey, progress: number, data: Record<string, unknown>): Promise<void> {
    const line = `${JSON.stringify({ t: Date.now(), p: progress, d: numericLeaves(data) } satisfies ProgressPoint)}\n`;
    const attempt = this.#store.attemptDir(key);
    if (attempt === undefined) return Promise.reject(new Error(`job ${key.pk} has not started: it has no progress history`));
    let file = this.#files.get(key.pk);
    if (file?.attempt !== attempt) {
      if (file !== undefined && !this.#dirty.has(file)) closeFile(file);
      file = { attempt, key, open: null, pending: [] };
      this.#files.delete(key.pk);
    }
    this.#files.set(key.pk, file);
    file.pending.push(line);
    this.#dirty.add(file);
    if (this.#files.size > KNOWN_FILES_MAX) this.#forgetOldFiles();
    if (this.#next === null) {
      const run = () => {
        this.#next = null;
        return this.#writePending();
      };
      const next = this.#writing.then(run, run);
      this.#writing = next.catch(() => undefined);
      this.#next = next;
    }
    return this.#next;
  }

  /** The job's attempt ended (finished, reset, aborted…): its file is closed once written. */
  forget(pk: number): void {
    const file = this.#files.get(pk);
    if (file === undefined) return;
    this.#files.delete(pk);
    if (!this.#dirty.has(file)) closeFile(file);
  }

  /** Write every queued point and close the files (the server waits for it before it closes). */
  async close(): Promise<void> {
    await this.#writing;
    for (const file of this.#files.values()) closeFile(file);
    this.#files.clear();
  }

  async #writePending(): Promise<void> {
    const failures: unknown[] = [];
    const dirty = this.#dirty;
    this.#dirty = new Set();
    for (const file of dirty) {
      try {
        await this.#write(file);
      } catch (err) {
        // Look at the directory and the file again next time (removed meanwhile, disk full…).
        closeFile(file);
        failures.push(err);
      }
      // Forgotten or replaced while its lines waited: nothing more will come to this file.
      if (this.#files.get(file.key.pk) !== file) closeFile(file);
    }
    // Files that had lines waiting could not be forgotten before.
    if (this.#files.size > KNOWN_FILES_MAX) this.#forgetOldFiles();
    if (failures.length > 0) throw failures[0];
  }

  /**
   * Append the file's pending lines: synchronously, on a descriptor kept open for the attempt — a
   * few hundred bytes into the page cache, like the WAL frames SQLite writes on this thread at every
   * commit. Each asynchronous append was three round trips through the thread pool (open, write,
   * close) per job and round, 7 % of the server's CPU under the lifecycle load. The directory and the
   * file are made through the thread pool, once per attempt: creating them waits for the file
   * system's journal, which the commits' syncs keep busy, and must not stall the event loop.
   */
  async #write(file: HistoryFile): Promise<void> {
    if (file.open === null) {
      const path = join(await this.#store.ensureAttemptDir(file.key), 'progress.jsonl');
      const fd = await openForAppend(path);
      file.open = { fd, path, size: fstatSync(fd).size, checkedAt: Date.now() };
    }
    // Lines that came while the file was being opened were taken with the round's.
    if (file.pending.length === 0) return;
    const { open: opened } = file;
    const text = file.pending.join('');
    file.pending = [];
    opened.size += writeSync(opened.fd, text);
    // Removed under us (the job's directory deleted by hand)? Looked at once a second: write to a
    // new file from the next point on.
    const now = Date.now();
    if (now - opened.checkedAt >= REMOVAL_CHECK_MS) {
      opened.checkedAt = now;
      if (fstatSync(opened.fd).nlink === 0) throw new Error(`${opened.path} was removed while being written`);
    }
    if (opened.size > MAX_HISTORY_BYTES) {
      closeFile(file);
      await thin(opened.path);
    }
  }

  #forgetOldFiles(): void {
    for (const [pk, file] of this.#files) {
      if (this.#files.size <= KNOWN_FILES_MAX / 2) return;
      if (this.#dirty.has(file)) continue;
      this.#files.delete(pk);
      closeFile(file);
    }
  }

  /** The points of the attempt, oldest first; `[]` when there are none. */
  async read(key: LogKey): Promise<ProgressPoint[]> {
    const dir = this.#store.attemptDir(key);
    if (dir === undefined) return [];
    let text: string;
    try {
      text = await readFile(join(dir, 'progress.jsonl'), 'utf8');
    } catch {
      return [];
    }
    const points: ProgressPoint[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        points.push(JSON.parse(line) as ProgressPoint);
      } catch {
        // A line cut by a crash mid-write: skip it.
      }
    }
    return points;
  }
}

/** `{"loss": 0.1, "m": {"acc": 0.9}, "name": "x"}` → `{"loss": 0.1, "m.acc": 0.9}`. */
export function numericLeaves(data: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  let count = 0;
  const walk = (value: unknown, prefix: string, depth: number) => {
    if (count >= MAX_KEYS || depth > 4) return;
    if (typeof value === 'number' && Number.isFinite(value) && prefix !== '' && prefix.length <= MAX_KEY_LENGTH) {
      out[prefix] = value;
      count++;
      return;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, prefix === '' ? k : `${prefix}.${k}`, depth + 1);
    }
  };
  walk(data, '', 0);
  return out;
}

/** Keep every other point, and always the last one (the current value); returns the new size. */
async function thin(file: string): Promise<number> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  const kept = lines.filter((_, i) => i % 2 === 0 || i === lines.length - 1);
  const text = `${kept.join('\n')}\n`;
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
  return Buffer.byteLength(text);
}

/** A plain descriptor (a FileHandle would close it when collected), opened through the thread pool. */
function openForAppend(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'a', (err, fd) => (err ? reject(err) : resolve(fd))));
}

function closeFile(file: HistoryFile): void {
  if (file.open === null) return;
  const { fd } = file.open;
  file.open = null;
  try {
    closeSync(fd);
  } catch {
    // Closing cannot lose a written line; nothing to do about a failure.
  }
}
