/**
 * What the progress history (`live-log/progress-history.ts`) must do on either store, run by
 * `progress-history.test.ts` on SQLite and `postgres/progress-history.test.ts` on PostgreSQL: points
 * recorded faster than they are written are written together, in order, once each; a new attempt of
 * a job drops the earlier ones; a history over its limit is thinned, the latest point kept; a job
 * deleted meanwhile loses its points without taking the others' with them; deleting a job deletes
 * its history; a history an earlier version wrote to a file is still read.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgressHistory } from '../../../src/server/live-log/progress-history.js';
import type { LogKey } from '../../../src/server/live-log/store.js';
import type { Db } from '../../../src/server/store/db.js';
import { tempDir } from '../../helpers/temp-dir.js';

const FIRST_START = '2030-01-01T00:00:00.000Z';
const SECOND_START = '2030-01-02T00:00:00.000Z';

/** A migrated, empty database of the store under test (closed by the caller's hooks). */
export type OpenDatabase = () => Promise<Db>;

async function setUp(open: OpenDatabase) {
  const db = await open();
  const legacyRoot = await tempDir('ufdl-progress-legacy-');
  const now = new Date().toISOString();
  const template = db
    .prepare(`INSERT INTO templates (name, version, type, executor_class, creation_time) VALUES ('t', 1, 'Run', 'x', ?)`)
    .run(now).lastInsertRowid as number;
  const job = (): number => db.prepare('INSERT INTO jobs (template, start_time, creation_time) VALUES (?, ?, ?)').run(template, FIRST_START, now).lastInsertRowid as number;
  const history = new ProgressHistory(db, (key) => join(legacyRoot, String(key.pk), String(Date.parse(key.startTime!))));
  const rows = (pk: number) => (db.prepare('SELECT COUNT(*) AS n FROM progress_points WHERE job = ?').get(pk) as { n: number }).n;
  return { db, job, history, rows, legacyRoot };
}

const steps = async (history: ProgressHistory, key: LogKey) => (await history.read(key)).map((p) => p.d.step);

export function progressHistoryCases(store: string, open: OpenDatabase): void {
  describe(`progress history (${store})`, () => {
    it('keeps every point of many recorded at once, in order, per job, with only their numbers', async () => {
      const { job, history } = await setUp(open);
      const first = { pk: job(), startTime: FIRST_START };
      const other = { pk: job(), startTime: FIRST_START };
      const recorded: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        recorded.push(history.record(first, i / 200, { step: i, nested: { loss: -i }, name: 'text is dropped' }));
        if (i % 2 === 0) recorded.push(history.record(other, i / 200, { step: i }));
      }
      await Promise.all(recorded);
      const points = await history.read(first);
      expect(points.map((p) => p.d.step)).toEqual([...Array(200).keys()]);
      expect(points[7]!.d).toEqual({ step: 7, 'nested.loss': -7 });
      expect(points[7]!.p).toBe(7 / 200);
      expect(await steps(history, other)).toEqual([...Array(100).keys()].map((i) => i * 2));
      // Points of turns apart, and of a job forgotten in between, land after the others.
      history.forget(first.pk);
      await history.record(first, 1, { step: 200 });
      expect((await steps(history, first)).slice(-2)).toEqual([199, 200]);
    });

    it('starts a new history for a new attempt and drops the earlier one', async () => {
      const { job, history, rows } = await setUp(open);
      const pk = job();
      await history.record({ pk, startTime: FIRST_START }, 0.5, { step: 1 });
      await history.record({ pk, startTime: SECOND_START }, 0.1, { step: 2 });
      expect(await steps(history, { pk, startTime: SECOND_START })).toEqual([2]);
      expect(await steps(history, { pk, startTime: FIRST_START })).toEqual([]);
      expect(rows(pk)).toBe(1);
    });

    it('thins a history that outgrows its limit, keeping the latest point and the order', async () => {
      const { job, history, rows } = await setUp(open);
      const key = { pk: job(), startTime: FIRST_START };
      let last = 0;
      for (let batch = 0; batch < 22; batch++) {
        await Promise.all(Array.from({ length: 500 }, () => history.record(key, 0.5, { seq: ++last })));
      }
      const seqs = (await history.read(key)).map((p) => p.d.seq!);
      expect(last).toBe(11_000);
      expect(seqs.length).toBeLessThanOrEqual(10_000);
      expect(seqs.length).toBeGreaterThan(5_000);
      expect(seqs.at(-1)).toBe(last);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(rows(key.pk)).toBe(seqs.length);
    });

    it("skips the points of a job deleted before they were written, and keeps the others'", async () => {
      const { db, job, history } = await setUp(open);
      const [gone, kept] = [job(), job()];
      const written = Promise.all([history.record({ pk: gone, startTime: FIRST_START }, 0.1, { step: 1 }), history.record({ pk: kept, startTime: FIRST_START }, 0.1, { step: 1 })]);
      db.prepare('DELETE FROM jobs WHERE pk = ?').run(gone);
      await written;
      expect(await steps(history, { pk: kept, startTime: FIRST_START })).toEqual([1]);
      expect(await steps(history, { pk: gone, startTime: FIRST_START })).toEqual([]);
    });

    it('deletes a job’s history with the job', async () => {
      const { db, job, history, rows } = await setUp(open);
      const pk = job();
      await history.record({ pk, startTime: FIRST_START }, 0.1, { step: 1 });
      expect(rows(pk)).toBe(1);
      db.prepare('DELETE FROM jobs WHERE pk = ?').run(pk);
      expect(rows(pk)).toBe(0);
    });

    it('reads the history file an earlier version wrote, while the database has no point of the attempt', async () => {
      const { job, history, legacyRoot } = await setUp(open);
      const key = { pk: job(), startTime: FIRST_START };
      const dir = join(legacyRoot, String(key.pk), String(Date.parse(FIRST_START)));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'progress.jsonl'), '{"t":1,"p":0.1,"d":{"step":1}}\n{"t":2,"p":0.2,"d":{"st');
      expect(await steps(history, key)).toEqual([1]);
      await history.record(key, 0.3, { step: 3 });
      expect(await steps(history, key)).toEqual([3]);
    });

    it('writes what was recorded before close, and refuses points after it', async () => {
      const { job, history, rows } = await setUp(open);
      const pk = job();
      const recorded = history.record({ pk, startTime: FIRST_START }, 0.1, { step: 1 });
      await history.close();
      await recorded;
      expect(rows(pk)).toBe(1);
      await expect(history.record({ pk, startTime: FIRST_START }, 0.2, {})).rejects.toThrow(/closed/);
      await expect(history.record({ pk, startTime: null }, 0.2, {})).rejects.toThrow(/has not started/);
    });
  });
}
