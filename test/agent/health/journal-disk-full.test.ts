/**
 * The wait after a journal write failed (journal-failure.ts) on a disk that is still full. Before,
 * its probe was one small journal write; the journal is WAL, and SQLite commits a rewritten row into
 * the `-wal` file's already allocated blocks with 0 bytes free. So the agent exited 74 "writable
 * again" onto the same full disk, failed again after its restart, and soon hit systemd's start
 * limit. Now the probe also wants room on the journal's and the work directory's file systems.
 *
 * The full disks are real: small tmpfs mounts, filled to the last byte. Mounting needs root (CI runs
 * as root); elsewhere those tests are skipped, saying so, and the decision is still tested on real
 * files with an injected free-space figure.
 */
import { closeSync, mkdirSync, openSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MIN_FREE_BYTES, freeBytesAt } from '../../../src/agent/health/free-space.js';
import { neededFreeBytes, waitUntilWritable } from '../../../src/agent/health/journal-failure.js';
import { openJournal, type Journal } from '../../../src/agent/journal/index.js';
import type { LogPort } from '../../../src/agent/ports.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { mountTmpfs, whyNoTmpfs } from '../../helpers/tmpfs.js';

const SERVER = 'http://127.0.0.1:8000';
const DISK_BYTES = 12 * 1024 * 1024;

const NO_TMPFS = whyNoTmpfs();
if (NO_TMPFS !== null) console.warn(`journal-disk-full.test.ts: the tests on a really full disk are skipped: ${NO_TMPFS}`);

/** A `DISK_BYTES` tmpfs at `<parent>/<name>`. */
function mountDisk(parent: string, name: string): string {
  return mountTmpfs(parent, name, DISK_BYTES);
}

/** Fill the file system holding `dir` to the last byte; returns the filler file, whose removal frees it. */
function fill(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(1)]) {
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

function journalIn(dir: string): Journal {
  const journal = openJournal({ path: join(dir, 'journal.sqlite3'), serverUrl: SERVER });
  onTestFinished(() => journal.close());
  return journal;
}

/** A log whose warnings are awaited one by one. */
function warnings(): { log: LogPort; next(): Promise<{ fields: Record<string, unknown>; msg: string }> } {
  const waiting: ((w: { fields: Record<string, unknown>; msg: string }) => void)[] = [];
  const queued: { fields: Record<string, unknown>; msg: string }[] = [];
  const quiet = () => {};
  return {
    log: {
      debug: quiet,
      info: quiet,
      error: quiet,
      warn: (fields, msg) => {
        const w = { fields: fields as Record<string, unknown>, msg: msg ?? '' };
        const resolve = waiting.shift();
        if (resolve) resolve(w);
        else queued.push(w);
      },
    },
    next: () => {
      const w = queued.shift();
      return w ? Promise.resolve(w) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** The wait's first word: a warning, or the wait's own result when it returned first. */
function firstOf(wait: Promise<boolean>, warned: Promise<{ msg: string }>): Promise<string> {
  return Promise.race([warned.then((w) => w.msg), wait.then((writable) => `returned ${writable} without a warning`)]);
}

function stopper(): AbortSignal {
  const stop = new AbortController();
  onTestFinished(() => stop.abort());
  return stop.signal;
}

describe.skipIf(NO_TMPFS !== null)(`the journal-failure probe on a really full disk${NO_TMPFS === null ? '' : ` (skipped: ${NO_TMPFS})`}`, () => {
  it('waits while the journal file system is full although a journal write commits there, and returns once it has room', async () => {
    const disk = mountDisk(await tempDir('ufdl-disk-full-'), 'disk');
    const journal = journalIn(disk);
    const workDir = join(disk, 'work');
    mkdirSync(workDir);
    const filler = fill(disk);
    expect(freeBytesAt(disk)).toBe(0);
    // The cause of the defect: a probe write alone says "writable" on this full disk.
    expect(() => journal.probeWrite()).not.toThrow();

    const { log, next } = warnings();
    const wait = waitUntilWritable(journal, stopper(), log, { workDir });
    expect(await firstOf(wait, next())).toBe(`the journal file system has 0 bytes free, waiting for at least ${MIN_FREE_BYTES}`);

    rmSync(filler);
    expect(await wait).toBe(true);
  });

  it("waits for room on the work directory's file system when that is another one", async () => {
    const parent = await tempDir('ufdl-disk-full-');
    const journalDisk = mountDisk(parent, 'journal');
    const workDisk = mountDisk(parent, 'work');
    const journal = journalIn(journalDisk);
    const filler = fill(workDisk);

    const { log, next } = warnings();
    const wait = waitUntilWritable(journal, stopper(), log, { workDir: workDisk });
    const warned = next();
    expect(await firstOf(wait, warned)).toBe(`the work directory file system has 0 bytes free, waiting for at least ${MIN_FREE_BYTES}`);
    expect((await warned).fields).toMatchObject({ path: workDisk, freeBytes: 0, neededBytes: MIN_FREE_BYTES });

    rmSync(filler);
    expect(await wait).toBe(true);
  });
});

describe('the journal-failure probe with an injected free-space figure', () => {
  it('waits until the file system has the floor free, then probes and returns', async () => {
    const dir = await tempDir('ufdl-disk-room-');
    const journal = journalIn(dir);
    let free = MIN_FREE_BYTES - 1;
    const { log, next } = warnings();
    const wait = waitUntilWritable(journal, stopper(), log, { workDir: dir, freeBytes: () => free });
    expect(await firstOf(wait, next())).toBe(`the journal file system has ${MIN_FREE_BYTES - 1} bytes free, waiting for at least ${MIN_FREE_BYTES}`);

    free = MIN_FREE_BYTES;
    expect(await wait).toBe(true);
  });

  it('returns once there is room although the work directory itself was removed (an operator freeing the disk)', async () => {
    // `rm -rf <work_dir>` frees a full disk in one go; the restart creates the directory again. The
    // file system a restart writes it to is its nearest existing parent's, and that one has room.
    const dir = await tempDir('ufdl-disk-room-');
    const journal = journalIn(dir);
    const workDir = join(dir, 'work');
    const { log } = warnings();
    expect(await waitUntilWritable(journal, stopper(), log, { workDir, freeBytes: () => MIN_FREE_BYTES })).toBe(true);
  });

  it("wants the journal's size free when the journal is larger than the floor", async () => {
    const dir = await tempDir('ufdl-disk-room-');
    const path = join(dir, 'journal.sqlite3');
    closeSync(openSync(path, 'w'));
    truncateSync(path, MIN_FREE_BYTES + 4096); // sparse: its size counts, not its blocks
    expect(neededFreeBytes(path)).toBe(MIN_FREE_BYTES + 4096);
    closeSync(openSync(`${path}-wal`, 'w'));
    truncateSync(`${path}-wal`, 8192);
    expect(neededFreeBytes(path)).toBe(MIN_FREE_BYTES + 4096 + 8192);
  });
});
