/**
 * The poll loop as the agent wires it (`loop.ts` is the loop itself): candidates listed by each
 * slot's node, evaluated against the cached templates and the executor allow-list, claimed through
 * the runners; every poll counted in the metrics and told to {@link Readiness} (refused credentials
 * make the agent not ready until a poll is answered again). Wake-up waits are capped by what the
 * server offers.
 */
import { pollFilter } from '../protocol/filter.js';
import { evaluateCandidate, type TemplateCache } from './candidates.js';
import { JobListReader } from './job-list.js';
import { WaitingReports } from './waiting-reports.js';
import { PollLoop, type ClaimOutcome } from './loop.js';
import type { AgentMetrics } from './metrics.js';
import type { ResolvedAgentOptions } from './options.js';
import type { Readiness } from './readiness.js';
import type { LogPort } from './ports.js';
import type { AgentParts } from './start-up-sequence.js';

export interface AgentLoopContext {
  options: ResolvedAgentOptions;
  /** After start-up: slots, nodes, executors, runners and capabilities exist. */
  parts: AgentParts;
  templates: TemplateCache;
  log: LogPort;
  metrics: AgentMetrics;
  readiness: Readiness;
  /** Whether the agent takes new jobs now. */
  accepting(): boolean;
  /** Resolves when {@link accepting} may have changed. */
  acceptingChanged(): Promise<void>;
}

/**
 * Candidates a poll asks for beyond the jobs this node skips. The head of the queue is all a poll
 * needs — the node claims the first job it can run — and a deep queue (ten thousand waiting jobs)
 * would otherwise be sent whole with every poll. The skipped jobs sit at the head (they are the
 * oldest the node has seen), so asking for them plus this many leaves this many to try.
 */
const POLL_CANDIDATES = 32;

/** The agent's poll loop, not started. */
export function createAgentLoop(ctx: AgentLoopContext): PollLoop {
  const { options: o, parts, metrics, readiness } = ctx;
  const nodes = parts.nodes!;
  const wait = parts.caps?.extensions.wait;
  const lists = new JobListReader(ctx.log);
  const waiting = new WaitingReports(() => nodes.all[0]?.api, ctx.log);
  const loop: PollLoop = new PollLoop(
    {
      slots: parts.slots!,
      log: ctx.log,
      accepting: ctx.accepting,
      acceptingChanged: ctx.acceptingChanged,
      listCandidates: async (slot, waitSeconds, signal) => {
        const api = nodes.get(slot.index)!.api;
        const limit = POLL_CANDIDATES + loop.skipList.size;
        // Checked entry by entry: the server's answer is not trusted to be what the type says.
        const body: unknown = await api.listJobs(pollFilter(), waitSeconds === null ? { signal, limit } : { waitSeconds, signal, limit });
        return lists.read(body);
      },
      evaluate: async (job, signal) => {
        const evaluation = await evaluateCandidate(job, nodes.all[0]!.api, ctx.templates, parts.executors!, signal);
        return evaluation.ok ? { ok: true } : evaluation;
      },
      claim: async (slot, job): Promise<ClaimOutcome> => {
        // The slot left the plan while it polled (fewer slots configured, its GPU gone).
        if (parts.slots!.isRetiring(slot.index)) return 'declined';
        const template = await ctx.templates.peek(job.template.pk)?.catch(() => undefined);
        if (!template) return 'lost';
        return parts.work!.claim(slot, job, template, nodes.get(slot.index)!.api);
      },
      onPolled: (result, ms) => {
        metrics.polls.inc({ result });
        metrics.pollSeconds.observe(ms / 1000);
        readiness.pollAnswered();
      },
      onPollError: (err) => {
        metrics.polls.inc({ result: 'error' });
        readiness.pollFailed(err);
      },
      onWatchdog: () => metrics.watchdogRestarts.inc(),
      // The job's submitter learns why it waits (on a server that offers it).
      onSkipped: (jobPk, reason) => waiting.report(jobPk, reason),
    },
    {
      pollScheduleS: o.pollScheduleS,
      errorBackoffS: o.errorBackoffS,
      waitSeconds: wait ? Math.min(o.waitSeconds, wait.max_seconds) : null,
      skipFailedForMs: o.skipFailedForMs,
      watchdogMs: o.watchdogMs > 0 ? o.watchdogMs : o.waitSeconds * 1000 + 3 * o.requestTimeoutMs + 60_000,
    },
  );
  return loop;
}
