/**
 * Signals (docs/ARCHITECTURE.md, "Signals"). One model, logged when a signal arrives:
 *
 * | input                      | plan                                                                 |
 * |----------------------------|----------------------------------------------------------------------|
 * | SIGTERM / SIGINT, first    | `drain`: no new jobs; running ones may finish within the drain timeout, then they are stopped |
 * | SIGTERM / SIGINT, second   | `stop-now`: stop running jobs (group SIGTERM, grace, SIGKILL), upload the log, report them so they run elsewhere, exit 0 |
 * | SIGQUIT                    | `stop-now` at once                                                   |
 * | any, third                 | `exit-now`: exit 1 at once; the journal makes the next start recover |
 */

export type ShutdownPlan = 'drain' | 'stop-now' | 'exit-now';

/** What the signal handler drives; the Agent implements it. */
export interface ShutdownTarget {
  drain(reason: string): void;
  stopNow(reason: string): void;
  exitNow(reason: string): void;
}

export interface ShutdownLogger {
  warn(obj: object, msg?: string): void;
}

/** Pure: the plan for the next signal, given the plans already in force. */
export function planFor(signal: NodeJS.Signals, previous: readonly ShutdownPlan[]): ShutdownPlan {
  if (previous.includes('stop-now')) return 'exit-now';
  if (signal === 'SIGQUIT') return 'stop-now';
  if (previous.includes('drain')) return 'stop-now';
  return 'drain';
}

const DESCRIPTIONS: Record<ShutdownPlan, string> = {
  drain: 'draining: no new jobs; running jobs may finish within the drain timeout, then they are stopped and requeued (send the signal again to stop them now)',
  'stop-now': 'stopping now: running jobs are stopped (SIGTERM, grace, SIGKILL), their logs uploaded, and they are requeued to run elsewhere; exit 0 when done (a further signal exits at once)',
  'exit-now': 'exiting at once without clean-up; the journal lets the next start recover the running jobs',
};

export function describePlan(plan: ShutdownPlan): string {
  return DESCRIPTIONS[plan];
}

export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];

/**
 * Install the handlers on `process`. Returns a function that removes them (tests, `close()`).
 */
export function installSignalHandlers(target: ShutdownTarget, log: ShutdownLogger): () => void {
  const plans: ShutdownPlan[] = [];
  const handler = (signal: NodeJS.Signals) => {
    const plan = planFor(signal, plans);
    plans.push(plan);
    log.warn({ signal, plan }, describePlan(plan));
    const reason = `${signal} received`;
    if (plan === 'drain') target.drain(reason);
    else if (plan === 'stop-now') target.stopNow(reason);
    else target.exitNow(reason);
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, handler);
  };
}
