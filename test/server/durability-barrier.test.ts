/**
 * Group commit (`store/durability.ts`, `durable-replies.ts`): one sync covers every commit made
 * before it started, a commit made while a sync runs waits for the next one, events wait for the
 * sync, and a failed sync fails the waiting requests with a 503 JSON answer, never silently.
 */
import Fastify from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { registerDurableReplies } from '../../src/server/durable-replies.js';
import { DurableBarrier, type DurabilitySource } from '../../src/server/store/durability.js';
import { temporaryDatabase } from './support/database.js';

/** A source whose flushes the test completes (or fails) by hand. */
function fakeSource() {
  let commits = 0;
  const flushes: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const source: DurabilitySource = {
    commitCount: () => commits,
    flush: () => new Promise<void>((resolve, reject) => flushes.push({ resolve, reject })),
  };
  return {
    source,
    commit: () => void commits++,
    flushes,
    /** Let the turn end (a sync starts then), settle the oldest pending flush, let the callbacks run. */
    async complete(error?: Error) {
      await turnEnd();
      const f = flushes.shift()!;
      if (error) f.reject(error);
      else f.resolve();
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** The end of the current turn of the event loop, when the barrier starts its sync. */
const turnEnd = () => new Promise((r) => setImmediate(r));

const settled = <T>(p: Promise<T>) => {
  const state = { done: false, error: undefined as unknown };
  p.then(
    () => (state.done = true),
    (err: unknown) => ((state.done = true), (state.error = err)),
  );
  return state;
};

describe('DurableBarrier', () => {
  it('should cover all the commits made while a sync runs with one more sync', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    fake.commit();
    const first = settled(barrier.syncAfterCommit());
    await turnEnd();
    const waits = [];
    for (let i = 0; i < 50; i++) {
      fake.commit();
      waits.push(settled(barrier.syncAfterCommit()));
    }
    expect(fake.flushes).toHaveLength(1);
    await fake.complete();
    expect(first.done).toBe(true);
    expect(waits.some((w) => w.done)).toBe(false);
    await fake.complete();
    expect(waits.every((w) => w.done && w.error === undefined)).toBe(true);
    expect(barrier.syncs).toBe(2);
    expect(barrier.isDurable()).toBe(true);
  });

  it('should start the sync at the end of the turn, covering every commit of the turn', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    fake.commit();
    const first = settled(barrier.syncAfterCommit());
    fake.commit();
    const second = settled(barrier.syncAfterCommit());
    expect(fake.flushes).toHaveLength(0);
    await turnEnd();
    expect(fake.flushes).toHaveLength(1);
    await fake.complete();
    expect(first.done && second.done).toBe(true);
    expect(barrier.syncs).toBe(1);
  });

  it('should let every waiter of the commits made before a sync started share it', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    for (let i = 0; i < 50; i++) fake.commit();
    const waits = Array.from({ length: 50 }, () => settled(barrier.syncAfterCommit()));
    await fake.complete();
    expect(waits.every((w) => w.done && w.error === undefined)).toBe(true);
    expect(barrier.syncs).toBe(1);
  });

  it('should make a commit made while a sync is in flight wait for the next sync', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    fake.commit();
    const first = settled(barrier.syncAfterCommit());
    await turnEnd();
    fake.commit(); // written after the first sync started
    const second = settled(barrier.syncAfterCommit());
    const third = settled(barrier.syncAfterCommit());
    expect(fake.flushes).toHaveLength(1);
    await fake.complete();
    expect(first.done).toBe(true);
    expect(second.done).toBe(false);
    await turnEnd();
    expect(fake.flushes).toHaveLength(1); // the next round started for those who came later
    await fake.complete();
    expect(second.done && third.done).toBe(true);
    expect(barrier.syncs).toBe(2);
  });

  it('should count failed syncs, time spent syncing, and the waits and events each sync released', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    fake.commit();
    const waits = [settled(barrier.syncAfterCommit()), settled(barrier.syncAfterCommit())];
    barrier.afterSync(() => {});
    await fake.complete(new Error('EIO'));
    expect(waits.every((w) => w.error instanceof Error)).toBe(true);
    expect(barrier.totals).toMatchObject({ failures: 1, released: 0 });
    // The event still waits; the next request's sync releases it with the three waits.
    const later = Array.from({ length: 3 }, () => settled(barrier.syncAfterCommit()));
    await fake.complete();
    expect(later.every((w) => w.done && w.error === undefined)).toBe(true);
    expect(barrier.syncs).toBe(1);
    expect(barrier.totals).toMatchObject({ failures: 1, released: 4 });
    expect(barrier.totals.seconds).toBeGreaterThan(0);
  });

  it('should answer at once when nothing was committed since the last sync', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    await barrier.syncAfterCommit();
    expect(fake.flushes).toHaveLength(0);
  });

  it('should run events only after the sync that covers their commit, in commit order', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    const seen: string[] = [];
    fake.commit();
    barrier.afterSync(() => seen.push('a'));
    await turnEnd();
    fake.commit();
    barrier.afterSync(() => seen.push('b'));
    expect(seen).toEqual([]);
    await fake.complete();
    expect(seen).toEqual(['a']);
    await fake.complete();
    expect(seen).toEqual(['a', 'b']);
  });

  it('should fail the waiters of a failed sync and hold their events until a sync succeeds', async () => {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    const seen: string[] = [];
    fake.commit();
    barrier.afterSync(() => seen.push('a'));
    const waiter = settled(barrier.syncAfterCommit());
    await fake.complete(new Error('EIO: i/o error, fdatasync'));
    expect(waiter.done).toBe(true);
    expect(String(waiter.error)).toMatch(/EIO/);
    expect(seen).toEqual([]);
    expect(barrier.isDurable()).toBe(false);
    await turnEnd();
    expect(fake.flushes).toHaveLength(0); // no retry loop against a broken disk
    const retry = settled(barrier.syncAfterCommit());
    await fake.complete();
    expect(retry.done && retry.error === undefined).toBe(true);
    expect(seen).toEqual(['a']);
  });
});

describe('walBarrier on a real database', () => {
  async function database() {
    const { db, durability } = await temporaryDatabase('ufdl-barrier-');
    db.exec('CREATE TABLE t (x INTEGER)');
    return { db, barrier: durability.barrier };
  }

  it('should share syncs between concurrent commits and survive checkpoints that truncate the WAL', async () => {
    const { db, barrier } = await database();
    await barrier.syncAfterCommit();
    const before = barrier.syncs;
    const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      insert.run(i);
      waits.push(barrier.syncAfterCommit());
      if (i === 100) db.pragma('wal_checkpoint(TRUNCATE)');
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    expect(barrier.isDurable()).toBe(true);
    const syncs = barrier.syncs - before;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(50);
  });
});

describe('durable replies', () => {
  async function app(failWith?: Error) {
    const fake = fakeSource();
    const barrier = new DurableBarrier(fake.source, { durableNow: true });
    const server = Fastify();
    registerDurableReplies(server, barrier);
    server.post('/write', async () => {
      fake.commit();
      return { ok: true };
    });
    server.get('/read', async () => ({ ok: true }));
    onTestFinished(() => server.close());
    // Settle every flush as it comes.
    const timer = setInterval(() => {
      for (const f of fake.flushes.splice(0)) (failWith ? f.reject(failWith) : f.resolve());
    }, 1);
    onTestFinished(() => clearInterval(timer));
    return { server, fake, barrier };
  }

  it('should answer a write only after the sync', async () => {
    const { server, barrier } = await app();
    const res = await server.inject({ method: 'POST', url: '/write' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    expect(barrier.syncs).toBe(1);
    expect((await server.inject({ method: 'GET', url: '/read' })).statusCode).toBe(200);
    expect(barrier.syncs).toBe(1);
  });

  it('should answer 503 JSON when the sync fails', async () => {
    const { server } = await app(new Error('EIO: i/o error, fdatasync'));
    const res = await server.inject({ method: 'POST', url: '/write' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json().detail).toMatch(/disk sync failed/);
    // A read answered after the failed write must not show it as durable either.
    expect((await server.inject({ method: 'GET', url: '/read' })).statusCode).toBe(503);
  });
});
