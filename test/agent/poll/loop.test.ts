import { describe, expect, it } from 'vitest';
import type { ClaimOutcome } from '../../../src/agent/job/claim.js';
import { PollLoop, SkipList, type Evaluation, type LoopContext } from '../../../src/agent/poll/loop.js';
import { planSlots, Slots, type SlotSpec } from '../../../src/agent/slots/slots.js';
import type { JobJson } from '../../../src/protocol/wire.js';
import { jobJson } from '../../helpers/job-json.js';
import { until } from '../../helpers/wait.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

const job = (pk: number): JobJson => jobJson({ pk });

/** The fake loop answers at once: check often. */
const soon = (check: () => boolean, what = 'condition') => until(check, 20_000, what, 5);

interface FakeOptions {
  queue: () => JobJson[];
  evaluate?: (job: JobJson) => Evaluation;
  claim?: (slot: SlotSpec, job: JobJson) => ClaimOutcome | Promise<ClaimOutcome>;
  list?: () => Promise<JobJson[]>;
  slots?: number;
}

function fakeContext(o: FakeOptions) {
  const slots = new Slots(planSlots(o.slots ?? 1, [], 0));
  const calls = { list: 0, evaluate: [] as number[], claim: [] as number[] };
  const ctx: LoopContext = {
    slots,
    log: silent,
    accepting: () => true,
    acceptingChanged: () => new Promise(() => {}),
    listCandidates: async () => {
      calls.list++;
      return o.list ? o.list() : o.queue();
    },
    evaluate: async (j) => {
      calls.evaluate.push(j.pk);
      return o.evaluate ? o.evaluate(j) : { ok: true };
    },
    claim: async (slot, j) => {
      calls.claim.push(j.pk);
      return o.claim ? o.claim(slot, j) : 'claimed';
    },
  };
  return { ctx, slots, calls };
}

/** A list answered on a later turn of the event loop, as a server's is: a loop that polls again at once does not starve the test's timers. */
const answerSoon = (jobs: () => JobJson[]) => () => new Promise<JobJson[]>((resolve) => setImmediate(() => resolve(jobs())));

const fast = { pollScheduleS: [0.01], errorBackoffS: [0.01], waitSeconds: null, skipFailedForMs: 60_000, watchdogMs: 10_000 };

describe('SkipList', () => {
  it('forgets a job once its time is up', () => {
    let now = 0;
    const list = new SkipList(() => now);
    list.add(5, 100, 'bad template');
    expect(list.has(5)).toBe(true);
    now = 101;
    expect(list.has(5)).toBe(false);
  });
});

describe('PollLoop', () => {
  it('polls again at once after skipping jobs the next poll leaves out, but not again when the server still lists them', async () => {
    // A server with wake-up that ignores the exclusions: it lists the unfit job every time.
    const { ctx, calls } = fakeContext({ queue: () => [job(1)], evaluate: () => ({ ok: false, reason: 'no Docker here' }) });
    const loop = new PollLoop(ctx, { ...fast, pollScheduleS: [600], waitSeconds: 5, excludedPerPoll: 64 });
    void loop.start();
    // The skip, then at once the poll that leaves job 1 out (on a server that honours it, held there).
    await soon(() => calls.list === 2, 'the second poll');
    // It listed job 1 again, nothing new to skip: the idle schedule (ten minutes), not a busy loop.
    await new Promise((r) => setTimeout(r, 200));
    expect(calls.list).toBe(2);
    expect(calls.evaluate).toEqual([1]);
    await loop.stop();
  });

  it('does not poll again at once for a skip whose time ran out before the next poll could leave it out', async () => {
    // skipFailedForMs 0: the skip is over at once, so no poll leaves the job out and every poll lists it.
    const { ctx, calls } = fakeContext({ list: answerSoon(() => [job(1)]), queue: () => [], evaluate: () => ({ ok: false, reason: 'no Docker here' }) });
    const loop = new PollLoop(ctx, { ...fast, pollScheduleS: [600], waitSeconds: 5, excludedPerPoll: 64, skipFailedForMs: 0 });
    void loop.start();
    await soon(() => calls.evaluate.length >= 1, 'the skip');
    await new Promise((r) => setTimeout(r, 200));
    // At most the one poll at once of a fresh skip; then the idle schedule (ten minutes), not a busy loop.
    expect(calls.list).toBeLessThanOrEqual(2);
    await loop.stop();
  });

  it('does not poll again at once, skip after skip, while its skips run out before the next poll', async () => {
    // A skip shorter than a poll: each poll lists the job again, and each evaluation skips it afresh.
    const { ctx, calls } = fakeContext({
      list: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return [job(1)];
      },
      queue: () => [],
      evaluate: () => ({ ok: false, reason: 'no Docker here' }),
    });
    const loop = new PollLoop(ctx, { ...fast, pollScheduleS: [600], waitSeconds: 5, excludedPerPoll: 64, skipFailedForMs: 3 });
    void loop.start();
    await soon(() => calls.evaluate.length >= 1, 'the skip');
    await new Promise((r) => setTimeout(r, 300));
    expect(calls.list).toBeLessThanOrEqual(2);
    await loop.stop();
  });

  it('does not poll again at once after an empty answer that a wait of 0 seconds did not hold', async () => {
    // `agent.wait = 0` on a server with wake-up: the poll is answered at once, so an empty answer is
    // no held wait and the idle schedule applies.
    const { ctx, calls } = fakeContext({ list: answerSoon(() => []), queue: () => [] });
    const loop = new PollLoop(ctx, { ...fast, pollScheduleS: [600], waitSeconds: 0, excludedPerPoll: 64 });
    void loop.start();
    await soon(() => calls.list >= 1, 'the first poll');
    await new Promise((r) => setTimeout(r, 200));
    expect(calls.list).toBe(1);
    await loop.stop();
  });

  it('waits its idle schedule after a skip when its polls cannot leave skipped jobs out (no wake-up)', async () => {
    const { ctx, calls } = fakeContext({ queue: () => [job(1)], evaluate: () => ({ ok: false, reason: 'no Docker here' }) });
    const loop = new PollLoop(ctx, { ...fast, pollScheduleS: [600] });
    void loop.start();
    await soon(() => calls.evaluate.length === 1, 'the skip');
    await new Promise((r) => setTimeout(r, 200));
    expect(calls.list).toBe(1);
    await loop.stop();
  });

  it('claims the first job that fits and keeps polling only while a slot is free', async () => {
    const { ctx, slots, calls } = fakeContext({ queue: () => [job(1), job(2)] });
    const loop = new PollLoop(ctx, fast);
    void loop.start();
    await soon(() => calls.claim.length === 1);
    // The slot now belongs to job 1: no poll until it is released.
    const polls = calls.list;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.list).toBe(polls);
    expect(slots.free).toBe(0);
    slots.release(0);
    await soon(() => calls.claim.length === 2);
    await loop.stop();
  });

  it('skips a job that fails evaluation and never lets it block the queue', async () => {
    const claimed: number[] = [];
    const { ctx, slots, calls } = fakeContext({
      queue: () => [job(1), job(2)].filter((j) => !claimed.includes(j.pk)),
      evaluate: (j) => (j.pk === 1 ? { ok: false, reason: 'unknown executor' } : { ok: true }),
      claim: (_s, j) => {
        claimed.push(j.pk);
        return 'claimed';
      },
    });
    const loop = new PollLoop(ctx, fast);
    void loop.start();
    await soon(() => claimed.includes(2));
    slots.release(0);
    await soon(() => calls.list >= 3);
    await loop.stop();
    expect(claimed).toEqual([2]);
    // Evaluated once, then skipped for skipFailedForMs.
    expect(calls.evaluate.filter((pk) => pk === 1)).toEqual([1]);
    expect(loop.getStatus().skipped.map((s) => s.jobPk)).toEqual([1]);
  });

  it('tries the next candidate after losing a race', async () => {
    const { ctx, calls } = fakeContext({
      queue: () => [job(1), job(2)],
      claim: (_s, j) => (j.pk === 1 ? 'lost' : 'claimed'),
    });
    const loop = new PollLoop(ctx, fast);
    void loop.start();
    await soon(() => calls.claim.includes(2));
    await loop.stop();
    expect(calls.claim.slice(0, 2)).toEqual([1, 2]);
  });

  it('backs off on server errors and recovers', async () => {
    let fail = 3;
    const { ctx, calls } = fakeContext({
      queue: () => [],
      list: async () => {
        if (fail-- > 0) throw new Error('ECONNREFUSED');
        return [job(9)];
      },
    });
    const errors: unknown[] = [];
    ctx.onPollError = (e) => errors.push(e);
    const loop = new PollLoop(ctx, fast);
    void loop.start();
    await soon(() => calls.claim.includes(9));
    await loop.stop();
    expect(errors).toHaveLength(3);
    expect(loop.getStatus().lastPollError).toBeNull();
  });

  it('abandons a stuck iteration (watchdog) and starts a new one', async () => {
    let first = true;
    const { ctx, calls } = fakeContext({
      queue: () => [],
      list: () => {
        if (first) {
          first = false;
          return new Promise(() => {}); // hangs forever and ignores its signal
        }
        return Promise.resolve([job(3)]);
      },
    });
    let fired = 0;
    ctx.onWatchdog = () => fired++;
    const loop = new PollLoop(ctx, { ...fast, watchdogMs: 200 });
    void loop.start();
    await soon(() => calls.claim.includes(3));
    await loop.stop();
    expect(fired).toBe(1);
    expect(loop.getStatus().watchdogRestarts).toBe(1);
  });

  it('leaves a claim that outlasts its limit alone (a release waiting out an outage), and counts no restart', async () => {
    let answer!: (outcome: ClaimOutcome) => void;
    const { ctx, calls } = fakeContext({ queue: () => [job(4)], claim: () => new Promise((resolve) => (answer = resolve)) });
    let fired = 0;
    ctx.onWatchdog = () => fired++;
    const loop = new PollLoop(ctx, { ...fast, watchdogMs: 100 });
    void loop.start();
    await soon(() => calls.claim.length === 1, 'the claim');
    // Many watchdog checks pass while the claim waits (they come every 100 ms at this limit).
    await new Promise((r) => setTimeout(r, 800));
    answer('claimed');
    await loop.stop();
    expect(fired).toBe(0);
    expect(loop.getStatus().watchdogRestarts).toBe(0);
    expect(calls.claim).toEqual([4]);
  });

  it('stop() ends a held poll at once', async () => {
    const { ctx } = fakeContext({
      queue: () => [],
      list: () => new Promise(() => {}),
    });
    const loop = new PollLoop(ctx, { ...fast, waitSeconds: 30 });
    void loop.start();
    await new Promise((r) => setTimeout(r, 20));
    // The held list never answers: a stop that waited for it would never return (no clock needed).
    const stopped = await Promise.race([loop.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting'), 30_000))]);
    expect(stopped).toBe('stopped');
  });
});
