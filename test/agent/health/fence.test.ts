import { describe, expect, it } from 'vitest';
import { Fence, fenceThresholdMs } from '../../../src/agent/health/fence.js';
import { ServerContact } from '../../../src/agent/server-contact.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('fenceThresholdMs()', () => {
  it('is lost_after minus the margin', () => {
    expect(fenceThresholdMs(600, 60_000)).toBe(540_000);
  });

  it('is never under half of lost_after', () => {
    expect(fenceThresholdMs(10, 60_000)).toBe(5_000);
  });
});

describe('Fence', () => {
  it('fires once the server has been silent past the threshold while jobs run, once per outage', () => {
    const clock = fakeClock();
    const contact = new ServerContact(clock);
    const fired: number[] = [];
    let running = true;
    const fence = new Fence({ contact, thresholdMs: 5_000, hasRunningJobs: () => running, onFence: (ms) => fired.push(ms), clock });
    contact.ok();
    clock.advance(4_000);
    contact.failed();
    expect(fence.check()).toBe(false);
    clock.advance(1_500);
    expect(fence.check()).toBe(true);
    expect(fired).toEqual([5_500]);
    clock.advance(10_000);
    expect(fence.check()).toBe(false);
    // The server answers again: the fence re-arms.
    contact.ok();
    expect(fence.check()).toBe(false);
    clock.advance(6_000);
    expect(fence.check()).toBe(true);
    expect(fence.fencedCount).toBe(2);
    running = false;
    contact.ok();
    clock.advance(60_000);
    expect(fence.check()).toBe(false);
  });

  it('does not fire while calls keep succeeding', () => {
    const clock = fakeClock();
    const contact = new ServerContact(clock);
    const fence = new Fence({ contact, thresholdMs: 1_000, hasRunningJobs: () => true, onFence: () => {}, clock });
    for (let i = 0; i < 10; i++) {
      clock.advance(900);
      contact.ok();
      expect(fence.check()).toBe(false);
    }
  });
});
