/**
 * The agent's side of systemd's notification protocol: READY=1 once it is registered and polling
 * (state `running`), STOPPING=1 when it begins to drain or stop, the watchdog petted while it is
 * alive ({@link Agent.liveness}), and a STATUS= line an operator reads in `systemctl status`:
 *
 *     2 slots: job 42 35 %, idle
 *     starting: the server http://ufdl:8000 cannot be reached (no answer for 40 s)
 *     draining: job 42 80 % (no new jobs)
 */
import type { Agent, AgentStatus } from '../agent/index.js';
import type { ServiceNotifier } from './notifier.js';

/** How often the line is recomputed besides the agent's own events (readiness reasons age). */
const REFRESH_MS = 5_000;

type StatusFacts = Pick<AgentStatus, 'state' | 'notReady' | 'slots' | 'jobs'>;

/** What the agent does, in one line. */
export function agentStatusLine(s: StatusFacts): string {
  const jobs = new Map(s.jobs.map((j) => [j.jobPk, j]));
  const describe = (jobPk: number) => {
    const job = jobs.get(jobPk);
    if (job?.phase === 'running' && job.progress !== null) return `job ${jobPk} ${Math.floor(job.progress * 100)} %`;
    return `job ${jobPk} ${job?.phase ?? 'running'}`;
  };
  const busy = s.slots.filter((slot) => slot.jobPk !== null).map((slot) => describe(slot.jobPk!));
  switch (s.state) {
    case 'starting':
      return `starting: ${s.notReady.filter((r) => !r.startsWith('the agent is starting')).join('; ') || 'logging in, registering, recovering the journal'}`;
    case 'running': {
      const slots = s.slots.map((slot) => (slot.jobPk === null ? 'idle' : describe(slot.jobPk)));
      const line = `${s.slots.length} slot${s.slots.length === 1 ? '' : 's'}: ${slots.join(', ')}`;
      // A busy agent is "not ready" too; that is what the slots already say.
      const problems = s.notReady.filter((r) => !r.startsWith('no free slot'));
      return problems.length > 0 ? `${line}; not ready: ${problems.join('; ')}` : line;
    }
    case 'draining':
      return busy.length > 0 ? `draining: ${busy.join(', ')} (no new jobs)` : 'draining: no job runs';
    case 'stopping':
      return busy.length > 0 ? `stopping: reporting ${busy.join(', ')}` : 'stopping';
    default:
      return s.state;
  }
}

/** Tell systemd what `agent` does until it stops; returns the function that stops telling. */
export function notifyAgent(agent: Agent, notifier: ServiceNotifier): () => void {
  if (!notifier.enabled) return () => {};
  const line = () => agentStatusLine(agent.getStatus());
  const update = () => {
    clearTimeout(pending);
    pending = undefined;
    const state = agent.state;
    if (state === 'running') notifier.ready(line());
    if (state === 'draining' || state === 'stopping') notifier.stopping(line());
    notifier.status(line());
  };
  // Progress can arrive many times a second; the line (a journal query) is made at most once a second.
  let pending: NodeJS.Timeout | undefined;
  const soon = () => {
    pending ??= setTimeout(update, 1000);
    pending.unref();
  };
  const events = ['ready', 'acquired', 'started', 'progressed', 'finished', 'fenced'] as const;
  agent.on('state', update);
  for (const event of events) agent.on(event, soon);
  const timer = setInterval(update, REFRESH_MS);
  timer.unref();
  notifier.starting(line());
  const stop = () => {
    clearInterval(timer);
    clearTimeout(pending);
    agent.off('state', update);
    for (const event of events) agent.off(event, soon);
  };
  agent.once('closed', stop);
  return stop;
}
