/**
 * The live-log store caches each log's state (its length, its cells). Readers (a follower, `GET
 * .../log`) and the appender both load that state from disk when it is not cached; a reader's load
 * that overlaps an append must never leave behind, in the cache, a state older than the append —
 * else followers see a log shorter than it is for good (a short job's follower printed nothing).
 */
import { describe, expect, it } from 'vitest';
import { LiveLogStore } from '../../src/server/live-log/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const MAX = 1 << 20;
const START = '2030-01-01T00:00:00.000Z';

async function store(): Promise<LiveLogStore> {
  const s = new LiveLogStore(await tempDir('ufdl-live-store-'), { maxBytesLimit: MAX });
  await s.init(() => true);
  return s;
}

/** Let `n` turns of the event loop pass (file-system callbacks complete in between). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('the live-log store under readers racing an append', () => {
  it('answers the appended length once the append has resolved, whenever the reader began', async () => {
    const s = await store();
    const line = Buffer.from('a line of the log\n');
    // Each job: an append, and a reader that starts some turns later, so that across the jobs the
    // reader's load from disk overlaps every step of the append (directory, cap file, bytes).
    const jobs = Array.from({ length: 120 }, (_, i) => i + 1);
    await Promise.all(
      jobs.map(async (pk) => {
        const key = { pk, startTime: START };
        const appended = s.append(key, 0, line, MAX);
        await turns(pk % 24);
        const [length] = await Promise.all([appended, s.info(key)]);
        expect(length).toBe(line.length);
      }),
    );
    for (const pk of jobs) {
      const key = { pk, startTime: START };
      expect((await s.info(key)).length, `job ${pk}`).toBe(line.length);
      expect((await s.piece(key, 0, 1 << 16)).length, `job ${pk}`).toBe(line.length);
    }
  });

  it('does the same for a log that already had bytes and was not cached', async () => {
    const s = await store();
    const first = Buffer.from('first\n');
    const second = Buffer.from('second\n');
    const jobs = Array.from({ length: 120 }, (_, i) => i + 1);
    for (const pk of jobs) {
      await s.append({ pk, startTime: START }, 0, first, MAX);
      // As after another replica's append: the next read loads from disk.
      s.appendedElsewhere(pk);
    }
    await Promise.all(
      jobs.map(async (pk) => {
        const key = { pk, startTime: START };
        const appended = s.append(key, first.length, second, MAX);
        await turns(pk % 24);
        await Promise.all([appended, s.piece(key, 0, 1 << 16)]);
      }),
    );
    for (const pk of jobs) expect((await s.info({ pk, startTime: START })).length, `job ${pk}`).toBe(first.length + second.length);
  });
});
