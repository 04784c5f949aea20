import { describe, expect, it } from 'vitest';
import { describePlan, planFor, type ShutdownPlan } from '../../src/agent/signals.js';

describe('planFor()', () => {
  it('drains on the first SIGTERM or SIGINT', () => {
    expect(planFor('SIGTERM', [])).toBe('drain');
    expect(planFor('SIGINT', [])).toBe('drain');
  });

  it('stops now on the second signal', () => {
    expect(planFor('SIGTERM', ['drain'])).toBe('stop-now');
    expect(planFor('SIGINT', ['drain'])).toBe('stop-now');
  });

  it('stops now at once on SIGQUIT', () => {
    expect(planFor('SIGQUIT', [])).toBe('stop-now');
  });

  it('exits at once on a signal after stop-now', () => {
    const plans: ShutdownPlan[] = ['drain', 'stop-now'];
    expect(planFor('SIGTERM', plans)).toBe('exit-now');
    expect(planFor('SIGQUIT', ['stop-now'])).toBe('exit-now');
  });

  it('describes every plan for the log', () => {
    for (const plan of ['drain', 'stop-now', 'exit-now'] as const) expect(describePlan(plan).length).toBeGreaterThan(20);
  });
});
