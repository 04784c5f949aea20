/**
 * The progress of each job over time, for the dashboard's curves: every `progress` notification
 * appends one line `{"t": ms, "p": progress, "d": {numbers}}` to `progress.jsonl` in the job's
 * live-log attempt directory (store.ts). Only the numeric values of the progress metadata are kept
 * (nested objects flattened to dotted keys), so a line stays small whatever a job sends. A history
 * over {@link MAX_HISTORY_BYTES} is thinned to every other point, so a week-long job keeps its whole
 * curve at a coarser step instead of growing without end.
 */
import { appendFile, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProgressPoint } from '../../protocol/dashboard.js';
import type { LiveLogStore, LogKey } from './store.js';

const MAX_HISTORY_BYTES = 2 * 1024 * 1024;
const MAX_KEYS = 32;
const MAX_KEY_LENGTH = 64;

export class ProgressHistory {
  readonly #store: LiveLogStore;
  #writing: Promise<unknown> = Promise.resolve();

  constructor(store: LiveLogStore) {
    this.#store = store;
  }

  /** Record a point (writes are queued, so points stay in order). Failures are the caller's to log. */
  record(key: LogKey, progress: number, data: Record<string, unknown>): Promise<void> {
    const line = `${JSON.stringify({ t: Date.now(), p: progress, d: numericLeaves(data) } satisfies ProgressPoint)}\n`;
    const run = async () => {
      const file = join(await this.#store.ensureAttemptDir(key), 'progress.jsonl');
      await appendFile(file, line);
      if ((await stat(file)).size > MAX_HISTORY_BYTES) await thin(file);
    };
    const next = this.#writing.then(run, run);
    this.#writing = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every queued write is done (the server waits for it before it closes). */
  idle(): Promise<unknown> {
    return this.#writing;
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

async function thin(file: string): Promise<void> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  // Keep every other point, and always the last one (the current value).
  const kept = lines.filter((_, i) => i % 2 === 0 || i === lines.length - 1);
  await writeFile(`${file}.tmp`, `${kept.join('\n')}\n`);
  await rename(`${file}.tmp`, file);
}
