/**
 * One agent process per journal, across processes: a second opener is refused with a clear error
 * naming the holder; a holder killed with SIGKILL leaves no stale lock; a clean close releases it;
 * of two agents starting at once exactly one gets the journal. A read-only opener sees the live
 * writer's commits without taking the lock.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JournalLockedError, openJournal, openReadOnly } from '../../../src/agent/journal/index.js';
import { buildJournal, type BuiltJournal } from '../../fixtures/journal/build.js';
import { startDriver, type Driver } from '../../fixtures/journal/driver.js';
import { tempDir } from '../../helpers/temp-dir.js';

const SERVER = 'http://127.0.0.1:8000';

let built: BuiltJournal;
let dir: string;
let path: string;
const drivers: Driver[] = [];

function driver(): Driver {
  const d = startDriver(built);
  drivers.push(d);
  return d;
}

async function openIn(d: Driver) {
  return d.send({ op: 'open', options: { path, serverUrl: SERVER } });
}

function lockedError(): JournalLockedError {
  try {
    openJournal({ path, serverUrl: SERVER }).close();
  } catch (err) {
    expect(err).toBeInstanceOf(JournalLockedError);
    return err as JournalLockedError;
  }
  throw new Error('expected JournalLockedError');
}

beforeAll(() => {
  built = buildJournal();
});

afterAll(() => built?.remove());

beforeEach(async () => {
  dir = await tempDir('ufdl-journal-lock-');
  path = join(dir, 'journal.db');
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.kill()));
});

describe('journal lock across processes', () => {
  it('should refuse a second agent, naming the holder pid', async () => {
    const holder = driver();
    expect((await openIn(holder)).ok).toBe(true);
    const err = lockedError();
    expect(err.code).toBe('JOURNAL_LOCKED');
    expect(err.holder).toMatchObject({ pid: holder.pid });
    expect(err.message).toContain(`pid ${holder.pid}`);
    expect(err.message).toContain(path);

    const second = driver();
    const reply = await openIn(second);
    expect(reply.ok).toBe(false);
    expect(reply.error).toMatchObject({ name: 'JournalLockedError', code: 'JOURNAL_LOCKED', holder: { pid: holder.pid } });
  });

  it('should let the next agent take over from one killed with SIGKILL', async () => {
    const holder = driver();
    expect((await openIn(holder)).ok).toBe(true);
    expect((await holder.send({ op: 'call', method: 'beginAcquire', args: [{ jobPk: 1, nodePk: 2 }] })).ok).toBe(true);
    await holder.kill();
    const journal = openJournal({ path, serverUrl: SERVER });
    try {
      expect(journal.get(1)?.state).toBe('acquiring');
      expect(journal.stats().holder).toMatchObject({ pid: process.pid, alive: true });
    } finally {
      journal.close();
    }
  });

  it('should release the lock on a clean close', async () => {
    const holder = driver();
    expect((await openIn(holder)).ok).toBe(true);
    expect((await holder.send({ op: 'close' })).ok).toBe(true);
    const reader = openReadOnly(path);
    expect(reader.stats().holder).toBeNull();
    reader.close();
    openJournal({ path, serverUrl: SERVER }).close();
    await holder.end();
    expect(await holder.exited).toEqual({ code: 0, signal: null });
  });

  it('should give the journal to exactly one of two agents starting at once', async () => {
    const [a, b] = [driver(), driver()];
    const replies = await Promise.all([openIn(a), openIn(b)]);
    expect(replies.filter((r) => r.ok)).toHaveLength(1);
    expect(replies.find((r) => !r.ok)?.error?.code).toBe('JOURNAL_LOCKED');
  });
});

describe('read-only opener beside a live agent', () => {
  it('should see every commit of the live writer, and its label', async () => {
    const writer = driver();
    expect((await openIn(writer)).ok).toBe(true);
    const reader = openReadOnly(path, { serverUrl: SERVER });
    try {
      expect(reader.unfinished()).toEqual([]);
      await writer.send({ op: 'call', method: 'beginAcquire', args: [{ jobPk: 5, nodePk: 2 }] });
      expect(reader.get(5)?.state).toBe('acquiring');
      await writer.send({ op: 'call', method: 'transition', args: [5, 'acquired'] });
      await writer.send({ op: 'call', method: 'transition', args: [5, 'preparing', { jobDir: '/w/5' }] });
      expect(reader.get(5)).toMatchObject({ state: 'preparing', jobDir: '/w/5' });
      expect(reader.stats()).toMatchObject({ holder: { pid: writer.pid, alive: true }, jobs: { unfinished: 1 } });
      // The reader took no lock: the writer keeps writing.
      expect((await writer.send({ op: 'call', method: 'transition', args: [5, 'releasing'] })).ok).toBe(true);
      expect(reader.get(5)?.state).toBe('releasing');
    } finally {
      reader.close();
    }
  });
});
