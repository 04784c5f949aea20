/**
 * The progress history behind the dashboard's curves: points recorded faster than they are written
 * are written together, in order, once each; a new attempt of a job starts a new history; a history
 * over its size limit is thinned; a directory removed under it is made again.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ProgressHistory } from '../../src/server/live-log/progress-history.js';
import { LiveLogStore } from '../../src/server/live-log/store.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import { until } from '../helpers/wait.js';
import { tempDir } from '../helpers/temp-dir.js';

async function history(): Promise<{ store: LiveLogStore; history: ProgressHistory }> {
  const root = await tempDir('ufdl-progress-history-');
  const store = new LiveLogStore(root, { maxBytesLimit: 1 << 20 });
  await store.init(() => true);
  const h = new ProgressHistory(store);
  onTestFinished(() => h.close());
  return { store, history: h };
}

/** How many descriptors this process holds open on history files under `root`. */
function openHistoryFiles(root: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(root) && target.endsWith('progress.jsonl')) count++;
    } catch {
      // The descriptor readdir itself used, closed meanwhile.
    }
  }
  return count;
}

const FIRST = { pk: 3, startTime: '2030-01-01T00:00:00.000Z' };
const SECOND = { pk: 3, startTime: '2030-01-02T00:00:00.000Z' };
const OTHER = { pk: 4, startTime: '2030-01-01T00:00:00.000Z' };

describe('progress history', () => {
  it('keeps every point of many recorded at once, in order, per job', async () => {
    const { history: h } = await history();
    const recorded: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      recorded.push(h.record(FIRST, i / 200, { step: i, nested: { loss: -i }, name: 'text is dropped' }));
      if (i % 2 === 0) recorded.push(h.record(OTHER, i / 200, { step: i }));
    }
    await Promise.all(recorded);
    const points = await h.read(FIRST);
    expect(points.map((p) => p.d.step)).toEqual([...Array(200).keys()]);
    expect(points[7]!.d).toEqual({ step: 7, 'nested.loss': -7 });
    expect(points[7]!.p).toBe(7 / 200);
    expect((await h.read(OTHER)).map((p) => p.d.step)).toEqual([...Array(100).keys()].map((i) => i * 2));
  });

  it('keeps the points of more jobs than it remembers, and appends to a forgotten job\'s file', async () => {
    const { history: h } = await history();
    const jobs = Array.from({ length: 1300 }, (_, i) => ({ pk: 100 + i, startTime: FIRST.startTime }));
    await Promise.all(jobs.map((key, i) => h.record(key, 0.1, { step: i })));
    // The first jobs were forgotten to make room; their next points go to the end of the same file.
    await Promise.all(jobs.slice(0, 3).map((key) => h.record(key, 0.2, { step: -1 })));
    for (const [i, key] of jobs.entries()) {
      const steps = (await h.read(key)).map((p) => p.d.step);
      expect(steps).toEqual(i < 3 ? [i, -1] : [i]);
    }
  });

  it('keeps a file open while its job runs, closes it when the job is forgotten, and all of them on close', async () => {
    const { store, history: h } = await history();
    await Promise.all([h.record(FIRST, 0.1, {}), h.record(OTHER, 0.1, {}), h.record({ pk: 5, startTime: FIRST.startTime }, 0.1, {})]);
    expect(openHistoryFiles(store.root)).toBe(3);
    h.forget(FIRST.pk);
    expect(openHistoryFiles(store.root)).toBe(2);
    // A point recorded after a forget opens the file again, and appends to it.
    await h.record(FIRST, 0.2, {});
    expect((await h.read(FIRST)).map((p) => p.p)).toEqual([0.1, 0.2]);
    await h.close();
    expect(openHistoryFiles(store.root)).toBe(0);
  });

  it('holds no more files open than it remembers', async () => {
    const { store, history: h } = await history();
    const jobs = Array.from({ length: 1300 }, (_, i) => ({ pk: 100 + i, startTime: FIRST.startTime }));
    await Promise.all(jobs.map((key) => h.record(key, 0.1, {})));
    expect(openHistoryFiles(store.root)).toBeLessThanOrEqual(512);
    await h.close();
  });

  it('starts a new history for a new attempt and removes the old one', async () => {
    const { store, history: h } = await history();
    await h.record(FIRST, 0.5, { step: 1 });
    await h.record(SECOND, 0.1, { step: 2 });
    expect((await h.read(SECOND)).map((p) => p.d.step)).toEqual([2]);
    expect(await readdir(join(store.root, '3'))).toEqual([store.attemptDir(SECOND)!.split('/').pop()]);
  });

  it('removes an older attempt found beside the current one, and makes a first attempt from nothing', async () => {
    const { store } = await history();
    // A first attempt: neither the job's directory nor the root's entries for it exist yet.
    await rm(store.root, { recursive: true, force: true });
    expect(await store.ensureAttemptDir(FIRST)).toBe(store.attemptDir(FIRST));
    expect(await readdir(join(store.root, '3'))).toEqual([store.attemptDir(FIRST)!.split('/').pop()]);
    // A crash between making the new attempt and removing the old one leaves both: the next ensure
    // of the (existing) current attempt still removes the old.
    await mkdir(store.attemptDir(SECOND)!, { recursive: true });
    await store.ensureAttemptDir(SECOND);
    await mkdir(store.attemptDir(FIRST)!, { recursive: true });
    await store.ensureAttemptDir(SECOND);
    expect(await readdir(join(store.root, '3'))).toEqual([store.attemptDir(SECOND)!.split('/').pop()]);
  });

  it('writes again after its directory was removed under it', async () => {
    const { store, history: h } = await history();
    await h.record(FIRST, 0.1, { step: 1 });
    await rm(join(store.root, '3'), { recursive: true, force: true });
    // The points written just after the removal may be lost (the open file is looked at once a
    // second); the history then recovers in a new file.
    let step = 1;
    await until(async () => {
      step++;
      await h.record(FIRST, step / 100, { step }).catch(() => undefined);
      return (await h.read(FIRST)).some((p) => p.d.step === step);
    }, 20_000, 'a point in the re-made history file', 100);
    const steps = (await h.read(FIRST)).map((p) => p.d.step);
    expect(steps.at(-1)).toBe(step);
    expect(steps).not.toContain(1);
  });


  it('thins a history that outgrows its limit, keeping the latest point', async () => {
    const { store, history: h } = await history();
    const wide = Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`metric_number_${i}`, 123456.789 + i]));
    let last = 0;
    // ~1 KiB a point: 3,000 points cross the 2 MiB limit.
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, () => h.record(FIRST, 0.5, { ...wide, seq: ++last })));
    }
    const file = join(store.attemptDir(FIRST)!, 'progress.jsonl');
    expect((await stat(file)).size).toBeLessThanOrEqual(2 * 1024 * 1024);
    const points = await h.read(FIRST);
    expect(points.length).toBeLessThan(3000);
    expect(points.at(-1)!.d.seq).toBe(last);
    const seqs = points.map((p) => p.d.seq!);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });
});

describe('progress history through the API', () => {
  it('files each progress report under the attempt it was made in, across reset and abort', async () => {
    const f = await startWithFixtures();
    const [node, job] = [f.node(), f.job()];
    const steps = async () => {
      const res = await f.call('GET', `/v1/jobs/${job}/progress-history`);
      expect(res.status).toBe(200);
      return (res.body as Array<{ d: { step: number } }>).map((p) => p.d.step);
    };
    const progress = async (step: number) => {
      expect((await f.call('POST', `/v1/jobs/${job}/progress/0.${step}`, { node, json: { step } })).status).toBe(200);
      await until(async () => (await steps()).includes(step), 30_000, `progress point ${step}`);
    };
    await f.startAs(node, job);
    await progress(1);
    await progress(2);
    expect(await steps()).toEqual([1, 2]);

    // Reset, then a new attempt: its history starts empty, whatever the server remembered.
    expect((await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } })).status).toBe(200);
    expect((await f.call('DELETE', `/v1/jobs/${job}/reset`, { node })).status).toBe(200);
    expect((await f.call('POST', `/v1/jobs/${job}/start`, { node, json: { send_notification: 'email' } })).status).toBe(200);
    await progress(3);
    expect(await steps()).toEqual([3]);

    // Aborted by the admin, acquired and started again: a third attempt.
    expect((await f.call('DELETE', `/v1/jobs/${job}/abort`)).status).toBe(200);
    await f.startAs(node, job);
    await progress(4);
    expect(await steps()).toEqual([4]);
  });
});
