import { describe, expect, it } from 'vitest';
import { Schedule } from '../../src/agent/timing.js';

describe('Schedule', () => {
  it('advances and sticks on the last delay, with jitter within bounds', () => {
    const s = new Schedule([1, 2, 5], { jitter: 0 });
    expect([s.next(), s.next(), s.next(), s.next()]).toEqual([1000, 2000, 5000, 5000]);
    s.reset();
    expect(s.next()).toBe(1000);
    const j = new Schedule([10], { jitter: 0.2, random: () => 1 });
    expect(j.next()).toBe(12_000);
  });
});
