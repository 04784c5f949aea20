/**
 * The durable floor's group commit (bench/lib/durable-work.mjs), in-process. The floor stands for
 * "the least a durable server must do": one that answered before its `fdatasync` would be cheaper
 * than any durable server, and the benchmark's conclusion wrong. A SIGKILL (durable-floor.test.ts)
 * cannot tell: the page cache survives it. So the WAL's `datasync` is held here, and the test checks
 * that no answer leaves before a sync that started after the commit of what it shows has completed.
 */
import Database from 'better-sqlite3';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { openDurableWork, Refused } from '../../bench/lib/durable-work.mjs';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

const NODE = 7;

/** Hold every `FileHandle.datasync()`: each call records what another connection sees committed, and waits for `release`. */
async function holdSyncs(dir: string, committedJobs: () => number) {
  const probe = await open(join(dir, '.probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const real = proto.datasync;
  const held: { committedAtStart: number; release: () => void }[] = [];
  proto.datasync = function (this: FileHandle) {
    const committedAtStart = committedJobs();
    return new Promise<void>((done, fail) => held.push({ committedAtStart, release: () => real.call(this).then(done, fail) }));
  };
  onTestFinished(() => {
    proto.datasync = real;
  });
  return held;
}

/** A moment for anything that should not happen to show itself (only ever before a check that it did not). */
const settle = () => new Promise((done) => setTimeout(done, 20));
/** The end of this turn, where a sync starts. */
const turnEnd = () => new Promise((done) => setImmediate(done));

describe('bench/lib/durable-work.mjs group commit', () => {
  it('answers only after a sync that started after the commit of what the answer shows', async () => {
    const dir = await tempDir('ufdl-durable-work-');
    let reader: Database.Database | undefined;
    onTestFinished(() => {
      reader?.close();
    });
    const committedJobs = () => {
      reader ??= new Database(join(dir, 'floor.sqlite3'), { readonly: true });
      return reader.prepare('SELECT count(*) FROM jobs WHERE node IS NOT NULL').pluck().get() as number;
    };
    const held = await holdSyncs(dir, committedJobs);
    const work = await openDurableWork({ dataDir: dir, nodePks: [NODE] });
    onTestFinished(() => work.close());
    const answered: string[] = [];

    const job = work.createJob(1, {}, null);
    work.acquire(job.pk, NODE);
    work.whenDurable(() => answered.push('acquire'));
    expect(held).toHaveLength(0); // the sync starts at the end of the turn, for all its answers
    await turnEnd();
    expect(held).toHaveLength(1);
    expect(held[0]!.committedAtStart).toBe(1); // committed before the sync started

    // Written while that sync runs: the sync in flight does not cover it.
    work.start(job.pk, NODE);
    work.whenDurable(() => answered.push('start'));
    // A refusal that read the unsynced start waits too.
    expect(() => work.start(job.pk, NODE)).toThrow(Refused);
    work.whenDurable(() => answered.push('refused start'));
    expect(held).toHaveLength(1); // one sync in flight
    await settle();
    expect(answered).toEqual([]);

    // A released sync is a real fdatasync, of no fixed length on a loaded machine: waited for, not slept on.
    held.shift()!.release();
    await until(() => answered.length > 0 && held.length > 0, 30_000, 'the first answer, and the next sync');
    expect(answered).toEqual(['acquire']);
    expect(held).toHaveLength(1); // the next sync, for the start
    await settle();
    expect(answered).toEqual(['acquire']);
    held.shift()!.release();
    await until(() => answered.length === 3, 30_000, 'the answers that waited for the second sync');
    expect(answered).toEqual(['acquire', 'start', 'refused start']);

    // Nothing written since: answered at once, no sync.
    work.whenDurable(() => answered.push('read'));
    expect(answered.at(-1)).toBe('read');
    expect(held).toHaveLength(0);
  });
});
