/**
 * Prometheus metrics of the agent (docs/OPERATIONS.md, "Health and metrics"), on a Registry of its
 * own so that two agents in one process (tests) or an embedded server never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface AgentMetrics {
  registry: Registry;
  jobsAcquired: Counter;
  /** outcome: success | error | cancelled | requeued | released | fenced */
  jobsEnded: Counter<'outcome'>;
  acquireRaces: Counter;
  polls: Counter<'result'>;
  pollSeconds: Histogram;
  uploadBytes: Counter;
  uploadFailures: Counter;
  recoveries: Counter<'action'>;
  fences: Counter;
  watchdogRestarts: Counter;
  slotsTotal: Gauge;
  slotsBusy: Gauge;
  serverSilentSeconds: Gauge;
  ready: Gauge;
  serverSwitches: Counter;
  serverAddress: Gauge<'url'>;
}

export function createAgentMetrics(options: { defaultMetrics?: boolean } = {}): AgentMetrics {
  const registry = new Registry();
  // prom-client samples event-loop lag with a timer every 10 ms by default: 100 wake-ups a second,
  // about 1 % of a core on an idle agent (bench/idle.bench.mjs). Every 100 ms is plenty for a lag gauge.
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'ufdl_agent_process_', eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  return {
    registry,
    jobsAcquired: new Counter({ name: 'ufdl_agent_jobs_acquired_total', help: 'Jobs this agent acquired.', registers }),
    jobsEnded: new Counter({
      name: 'ufdl_agent_jobs_ended_total',
      help: 'Jobs that left this agent, by outcome (success, error, cancelled, requeued, released, fenced).',
      labelNames: ['outcome'],
      registers,
    }),
    acquireRaces: new Counter({ name: 'ufdl_agent_acquire_races_total', help: 'Acquires lost to another node (406 or a re-read showing another node).', registers }),
    polls: new Counter({ name: 'ufdl_agent_polls_total', help: 'Queue polls, by result (jobs, empty, error).', labelNames: ['result'], registers }),
    pollSeconds: new Histogram({
      name: 'ufdl_agent_poll_seconds',
      help: 'Duration of a queue poll (includes the server-side wait when wake-up is on).',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60],
      registers,
    }),
    uploadBytes: new Counter({ name: 'ufdl_agent_upload_bytes_total', help: 'Output bytes uploaded.', registers }),
    uploadFailures: new Counter({ name: 'ufdl_agent_upload_failures_total', help: 'Output uploads that failed after their retries.', registers }),
    recoveries: new Counter({ name: 'ufdl_agent_recoveries_total', help: 'Journal entries recovered at start-up, by action.', labelNames: ['action'], registers }),
    fences: new Counter({ name: 'ufdl_agent_fences_total', help: 'Times the agent stopped its children because the server was unreachable too long.', registers }),
    watchdogRestarts: new Counter({ name: 'ufdl_agent_watchdog_restarts_total', help: 'Poll-loop iterations restarted by the watchdog.', registers }),
    slotsTotal: new Gauge({ name: 'ufdl_agent_slots', help: 'Job slots of this agent.', registers }),
    slotsBusy: new Gauge({ name: 'ufdl_agent_slots_busy', help: 'Job slots running a job (not counting a slot the poll loop holds while it polls).', registers }),
    serverSilentSeconds: new Gauge({ name: 'ufdl_agent_server_silent_seconds', help: 'Seconds since the server last answered.', registers }),
    ready: new Gauge({ name: 'ufdl_agent_ready', help: '1 when the agent is ready to take jobs.', registers }),
    serverSwitches: new Counter({ name: 'ufdl_agent_server_switches_total', help: 'Times the agent moved to another server address (failing over or back).', registers }),
    serverAddress: new Gauge({ name: 'ufdl_agent_server_address', help: '1 for the server address in use, 0 for the others.', labelNames: ['url'], registers }),
  };
}
