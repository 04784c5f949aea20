/**
 * The wake-up hub on its own (no server): one waiter per acquirable job, the longest-waiting one
 * among those whose filter has it; offers passed on when the woken node passes the job; departed
 * waiters never chosen. The thundering herd it replaces woke every waiter for every job.
 */
import { describe, expect, it, vi } from 'vitest';
import { WakeHub, type WaitFilter, type WaitFilterBase, type WaitOptions, type WaitOutcome } from '../../src/server/wake-up/wake-hub.js';

/** A filter whose result is the set `jobs` (mutable), counting how often the hub asks it. */
function filter(key: string, jobs: Set<number>) {
  const f = {
    key,
    asked: 0,
    matches(pk: number) {
      f.asked++;
      return jobs.has(pk);
    },
  };
  return f satisfies WaitFilter;
}

/** A base whose result is the set `jobs`, counting how often the hub asks it; `cost` as the allowance counts it. */
function base(key: string, jobs: Set<number>, cost = { terms: 1, searched: 0 }) {
  const b = {
    key,
    cost,
    asked: 0,
    matches(pk: number) {
      b.asked++;
      return jobs.has(pk);
    },
  };
  return b satisfies WaitFilterBase;
}

/** A filter that is `of` less the pks `excluded` (none: `of` alone), as the store builds it. */
function excluding(of: WaitFilterBase, ...excluded: number[]): WaitFilter {
  const set = new Set(excluded);
  const key = excluded.length === 0 ? of.key : `${of.key} excluding ${excluded.join(',')}`;
  return { key, base: of, excluded: set, matches: (pk) => !set.has(pk) && of.matches(pk) };
}

/** Queue a waiter and record how its wait ends. */
function waiter(hub: WakeHub, options: Partial<WaitOptions> & { filter: WaitFilter }) {
  let connected = true;
  const wait = hub.wait({ node: null, timeoutMs: 60_000, connected: () => connected, ...options });
  const state: { outcome: WaitOutcome | null; leave(): void; disconnect(): void; seq: number; declined: string | null } = {
    outcome: null,
    seq: wait.seq,
    declined: wait.declined,
    leave: () => wait.cancel(),
    disconnect: () => {
      connected = false;
    },
  };
  void wait.outcome.then((o) => {
    state.outcome = o;
  });
  return state;
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('WakeHub', () => {
  it('wakes one waiter per acquirable job, the longest-waiting first, and keeps the rest waiting', async () => {
    const hub = new WakeHub();
    const queue = new Set<number>();
    const poll = filter('poll', queue);
    const waiters = Array.from({ length: 5 }, () => waiter(hub, { filter: poll }));
    for (const job of [1, 2, 3]) {
      queue.add(job);
      hub.jobAcquirable(job);
    }
    await settled();
    expect(waiters.map((w) => w.outcome)).toEqual(['woken', 'woken', 'woken', null, null]);
    expect(hub.stats()).toMatchObject({ waiting: 2, offers: 3, wakes: 3, reoffers: 0 });
    hub.close();
  });

  it('asks each filter once per job, however many wait on it', async () => {
    const hub = new WakeHub();
    const queue = new Set<number>();
    const poll = filter('poll', queue);
    const other = filter('other', new Set());
    for (let i = 0; i < 10_000; i++) waiter(hub, { filter: i % 2 ? poll : other });
    queue.add(7);
    hub.jobAcquirable(7);
    expect(poll.asked + other.asked).toBe(2);
    expect(hub.stats()).toMatchObject({ waiting: 9_999, filters: 2, wakes: 1 });
    hub.close();
  });

  it('wakes only waiters whose filter has the job, and nobody when no filter has it', async () => {
    const hub = new WakeHub();
    const gpuJobs = new Set<number>();
    const cpuJobs = new Set<number>();
    const gpu = waiter(hub, { filter: filter('gpu', gpuJobs) });
    const cpu = waiter(hub, { filter: filter('cpu', cpuJobs) });
    cpuJobs.add(1);
    hub.jobAcquirable(1);
    hub.jobAcquirable(2);
    await settled();
    expect([gpu.outcome, cpu.outcome]).toEqual([null, 'woken']);
    expect(hub.stats()).toMatchObject({ waiting: 1, offers: 1 });
    hub.close();
  });

  it('prefers the longest waiter across filters that both have the job', async () => {
    const hub = new WakeHub();
    const jobs = new Set([1]);
    const late = filter('b', jobs);
    const early = filter('a', jobs);
    const first = waiter(hub, { filter: early });
    const second = waiter(hub, { filter: late });
    hub.jobAcquirable(1);
    await settled();
    expect([first.outcome, second.outcome]).toEqual(['woken', null]);
    hub.close();
  });

  it('passes a job on when the woken node lists again without taking it, and never back to that node', async () => {
    const hub = new WakeHub();
    const jobs = new Set([1]);
    const poll = filter('poll', jobs);
    const a = waiter(hub, { filter: poll, node: 10 });
    const b = waiter(hub, { filter: poll, node: 11 });
    hub.jobAcquirable(1);
    await settled();
    expect([a.outcome, b.outcome]).toEqual(['woken', null]);
    // Node 10 skipped the job and polls again (its list has the job, so it does not wait).
    hub.nodeListed(10);
    await settled();
    expect(b.outcome).toBe('woken');
    // Node 11 passes too, and node 10 happens to be waiting again: it is not offered the job again.
    const aAgain = waiter(hub, { filter: poll, node: 10 });
    hub.nodeListed(11);
    await settled();
    expect(aAgain.outcome).toBeNull();
    expect(hub.stats()).toMatchObject({ wakes: 2, reoffers: 1, offers: 0 });
    hub.close();
  });

  it('passes a job on when the woken node acquires another one instead', async () => {
    const hub = new WakeHub();
    const jobs = new Set([1, 2]);
    const poll = filter('poll', jobs);
    const a = waiter(hub, { filter: poll, node: 10 });
    const b = waiter(hub, { filter: poll, node: 11 });
    const c = waiter(hub, { filter: poll, node: 12 });
    hub.jobAcquirable(1);
    hub.jobAcquirable(2);
    await settled();
    expect([a.outcome, b.outcome, c.outcome]).toEqual(['woken', 'woken', null]);
    // Node 11, woken for job 2, wins job 1 first; job 1's offer to node 10 is settled, and job 2,
    // which node 11 did not take, goes to the next waiter.
    jobs.delete(1);
    hub.jobAcquired(1, 11);
    await settled();
    expect(c.outcome).toBe('woken');
    // Node 10 then takes job 2: the offer to node 12 is settled, nobody else is woken.
    jobs.delete(2);
    hub.jobAcquired(2, 10);
    expect(hub.stats()).toMatchObject({ wakes: 3, reoffers: 1, offers: 0 });
    hub.close();
  });

  it('passes a job on when the woken node does not take it within the grace', async () => {
    vi.useFakeTimers();
    try {
      const hub = new WakeHub({ offerGraceMs: 500 });
      const jobs = new Set([1]);
      const poll = filter('poll', jobs);
      const a = waiter(hub, { filter: poll, node: 10 });
      const b = waiter(hub, { filter: poll, node: 11 });
      hub.jobAcquirable(1);
      await vi.advanceTimersByTimeAsync(499);
      expect([a.outcome, b.outcome]).toEqual(['woken', null]);
      await vi.advanceTimersByTimeAsync(1);
      expect(b.outcome).toBe('woken');
      // Taken elsewhere (another replica): when the grace ends, the job no longer matches.
      jobs.delete(1);
      const c = waiter(hub, { filter: poll, node: 12 });
      await vi.advanceTimersByTimeAsync(1000);
      expect(c.outcome).toBeNull();
      expect(hub.stats()).toMatchObject({ offers: 0, wakes: 2 });
      hub.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('never chooses a waiter whose client has gone, even before its close was seen', async () => {
    const hub = new WakeHub();
    const jobs = new Set([1, 2]);
    const poll = filter('poll', jobs);
    const left = waiter(hub, { filter: poll });
    const cutOff = waiter(hub, { filter: poll });
    const present = waiter(hub, { filter: poll });
    const last = waiter(hub, { filter: poll });
    left.leave();
    cutOff.disconnect();
    expect(hub.stats().waiting).toBe(3);
    hub.jobAcquirable(1);
    await settled();
    expect([left.outcome, cutOff.outcome, present.outcome, last.outcome]).toEqual(['gone', 'gone', 'woken', null]);
    expect(hub.stats().waiting).toBe(1);
    hub.close();
  });

  it('ends a wait when its time runs out, and lets a woken waiter wait again in its old place', async () => {
    vi.useFakeTimers();
    try {
      const hub = new WakeHub();
      const jobs = new Set<number>();
      const poll = filter('poll', jobs);
      const first = waiter(hub, { filter: poll, timeoutMs: 1000 });
      const second = waiter(hub, { filter: poll, timeoutMs: 5000 });
      jobs.add(1);
      hub.jobAcquirable(1);
      await vi.advanceTimersByTimeAsync(0);
      expect(first.outcome).toBe('woken');
      // Someone else took the job: the first waiter comes back, ahead of the second.
      jobs.delete(1);
      const back = waiter(hub, { filter: poll, timeoutMs: 1000, seq: first.seq });
      jobs.add(2);
      hub.jobAcquirable(2);
      await vi.advanceTimersByTimeAsync(0);
      expect([back.outcome, second.outcome]).toEqual(['woken', null]);
      jobs.delete(2);
      await vi.advanceTimersByTimeAsync(5000);
      expect(second.outcome).toBe('expired');
      expect(hub.stats()).toMatchObject({ waiting: 0, filters: 0 });
      hub.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('has every waiter look again on a recheck, longest first, and a job one of them claims is offered to its node', async () => {
    vi.useFakeTimers();
    try {
      const hub = new WakeHub({ offerGraceMs: 1000 });
      const jobs = new Set<number>();
      const poll = filter('poll', jobs);
      const other = filter('other', new Set());
      const first = waiter(hub, { filter: poll, node: 10 });
      const gone = waiter(hub, { filter: other, node: 11 });
      const third = waiter(hub, { filter: poll, node: 12 });
      gone.disconnect();
      // Job 1 became acquirable where this hub did not hear of it: only a recheck finds it.
      jobs.add(1);
      hub.recheck();
      await vi.advanceTimersByTimeAsync(0);
      expect([first.outcome, gone.outcome, third.outcome]).toEqual(['recheck', 'gone', 'recheck']);
      expect(hub.stats()).toMatchObject({ waiting: 0, filters: 0, rechecks: 2, wakes: 0 });
      // The first to look claims the job; the next finds it offered to another node, and waits again
      // in its place (a waiter queued since comes after it).
      hub.claim(1, 10);
      expect(hub.offeredToAnother(1, 12)).toBe(true);
      const thirdAgain = waiter(hub, { filter: poll, node: 12, seq: third.seq });
      const later = waiter(hub, { filter: poll, node: 13 });
      // Node 10 does not take it in time: it goes to the next waiter, as after a wake-up.
      await vi.advanceTimersByTimeAsync(1000);
      expect([thirdAgain.outcome, later.outcome]).toEqual(['woken', null]);
      expect(hub.stats()).toMatchObject({ waiting: 1, offers: 1, reoffers: 1 });
      hub.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends every wait on close, and later waits at once', async () => {
    const hub = new WakeHub();
    const poll = filter('poll', new Set());
    const waiters = [waiter(hub, { filter: poll }), waiter(hub, { filter: filter('x', new Set()) })];
    hub.close();
    const after = waiter(hub, { filter: poll });
    await settled();
    expect([...waiters, after].map((w) => w.outcome)).toEqual(['closed', 'closed', 'closed']);
    expect(hub.stats()).toMatchObject({ waiting: 0, filters: 0 });
  });

  it('counts a filter that throws as not matching, and reports it', async () => {
    const errors: unknown[] = [];
    const hub = new WakeHub({ onError: (err) => errors.push(err) });
    const broken: WaitFilter = {
      key: 'broken',
      matches: () => {
        throw new Error('database closed');
      },
    };
    const w = waiter(hub, { filter: broken });
    hub.jobAcquirable(1);
    await settled();
    expect(w.outcome).toBeNull();
    expect(errors).toHaveLength(1);
    hub.close();
  });
  it('asks a base once per job however many filters share it, and checks their exclusions in memory', async () => {
    const hub = new WakeHub();
    const queue = new Set([7]);
    const poll = base('poll', queue);
    // A thousand nodes, each skipping other jobs; the first two skip job 7.
    const skippers = [excluding(poll, 7), excluding(poll, 3, 7)];
    for (let i = 0; i < 1000; i++) skippers.push(excluding(poll, 10_000 + i));
    const waiters = skippers.map((f) => waiter(hub, { filter: f }));
    expect(hub.stats()).toMatchObject({ waiting: 1002, filters: 1002, bases: 1 });
    hub.jobAcquirable(7);
    await settled();
    expect(poll.asked).toBe(1);
    expect(waiters.slice(0, 4).map((w) => w.outcome)).toEqual([null, null, 'woken', null]);
    expect(hub.stats()).toMatchObject({ baseChecks: 1, wakes: 1, waiting: 1001 });
    hub.close();
  });

  it('asks nothing of a base when every waiter on it excludes the job, and wakes nobody', async () => {
    const hub = new WakeHub();
    const poll = base('poll', new Set([7]));
    const waiters = [waiter(hub, { filter: excluding(poll, 7) }), waiter(hub, { filter: excluding(poll, 7, 8) })];
    hub.jobAcquirable(7);
    await settled();
    expect(poll.asked).toBe(0);
    expect(waiters.map((w) => w.outcome)).toEqual([null, null]);
    expect(hub.stats()).toMatchObject({ baseChecks: 0, wakes: 0, waiting: 2 });
    hub.close();
  });

  it('keeps first come, first served across bases and the filters that share them', async () => {
    const hub = new WakeHub();
    const jobs = new Set([1]);
    const a = base('a', jobs);
    const b = base('b', jobs);
    const first = waiter(hub, { filter: excluding(a, 1) });
    const second = waiter(hub, { filter: excluding(b, 9) });
    const third = waiter(hub, { filter: excluding(a, 8) });
    hub.jobAcquirable(1);
    await settled();
    expect([first.outcome, second.outcome, third.outcome]).toEqual([null, 'woken', null]);
    hub.close();
  });

  it("declines a user's waiter with a new base beyond its allowance, and admits any number on the bases it holds", async () => {
    const hub = new WakeHub({ maxBasesPerUser: 3 });
    const none = new Set<number>();
    const bases = Array.from({ length: 4 }, (_, i) => base(`hostile ${i}`, none));
    const held = bases.slice(0, 3).map((b) => waiter(hub, { filter: excluding(b), user: 2 }));
    const over = waiter(hub, { filter: excluding(bases[3]!), user: 2 });
    await settled();
    expect(over.outcome).toBe('declined');
    expect(over.declined).toMatch(/already use 3 distinct filters, the most allowed \(serve\.max_wait_filters_per_user\)/);
    expect(held.map((w) => w.outcome)).toEqual([null, null, null]);
    // A cluster sharing one account: one base, each node its own skip list, any number of them.
    const poll = base('poll', new Set([5]));
    const cluster = Array.from({ length: 500 }, (_, i) => waiter(hub, { filter: excluding(poll, 100 + i), user: 1 }));
    cluster.push(...Array.from({ length: 500 }, () => waiter(hub, { filter: excluding(poll), user: 1 })));
    // The hostile user's bases held, more waiters on them are admitted; another user's are its own.
    const more = waiter(hub, { filter: excluding(bases[0]!, 1), user: 2 });
    const other = waiter(hub, { filter: excluding(bases[3]!), user: 3 });
    await settled();
    expect([more.outcome, other.outcome]).toEqual([null, null]);
    expect(cluster.every((w) => w.outcome === null)).toBe(true);
    expect(hub.stats()).toMatchObject({ waiting: 1005, bases: 5, declined: 1 });
    // A job costs one question a base whose first waiter came before the one woken: the hostile
    // user's three, and one for the whole cluster (user 3's waiter came later: not asked).
    hub.jobAcquirable(5);
    await settled();
    expect(cluster[0]!.outcome).toBe('woken');
    expect(hub.stats().baseChecks).toBe(4);
    // Once a base is let go, a new one fits.
    held[1]!.leave();
    expect(waiter(hub, { filter: excluding(bases[3]!), user: 2 }).declined).toBeNull();
    hub.close();
  });

  it("declines a new base whose cost would take the user's waiting filters past the limits of one filter", async () => {
    const hub = new WakeHub();
    const none = new Set<number>();
    expect(waiter(hub, { filter: excluding(base('search 9000', none, { terms: 1, searched: 9_000 })), user: 2 }).declined).toBeNull();
    expect(waiter(hub, { filter: excluding(base('search 2000', none, { terms: 1, searched: 2_000 })), user: 2 }).declined).toMatch(
      /search for 9000 characters in all, and this one's 2000 would pass the 10000 allowed/,
    );
    expect(waiter(hub, { filter: excluding(base('terms 450', none, { terms: 450, searched: 0 })), user: 2 }).declined).toBeNull();
    expect(waiter(hub, { filter: excluding(base('terms 60', none, { terms: 60, searched: 0 })), user: 2 }).declined).toMatch(
      /451 expressions in all, and this one's 60 would pass the 500 allowed/,
    );
    expect(waiter(hub, { filter: excluding(base('search 1000', none, { terms: 1, searched: 1_000 })), user: 2 }).declined).toBeNull();
    expect(hub.stats()).toMatchObject({ waiting: 3, declined: 2 });
    hub.close();
  });

  it('bounds nothing with an allowance of 0, nor waiters that name no user', async () => {
    const unbounded = new WakeHub({ maxBasesPerUser: 0 });
    const bounded = new WakeHub({ maxBasesPerUser: 1 });
    const none = new Set<number>();
    for (let i = 0; i < 50; i++) {
      waiter(unbounded, { filter: excluding(base(`f${i}`, none, { terms: 400, searched: 9_000 })), user: 2 });
      waiter(bounded, { filter: base(`f${i}`, none) });
    }
    expect(unbounded.stats()).toMatchObject({ waiting: 50, bases: 50, declined: 0 });
    expect(bounded.stats()).toMatchObject({ waiting: 50, bases: 50, declined: 0 });
    unbounded.close();
    bounded.close();
  });
});
