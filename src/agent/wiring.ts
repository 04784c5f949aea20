/**
 * The agent's parts, assembled: the real outside world ({@link realDeps}: journal, client, hardware,
 * executors), the jobs in flight with their leases ({@link createJobs}, during start-up, before
 * recovery), and once start-up is done every part that runs on its own ({@link wireRunningParts}):
 * the server watch (heartbeat and self-fencing) and the poll loop. Each part gets only what it needs
 * of the agent ({@link AgentSide}); what the agent decides (its state, whether it takes work) stays in
 * `agent.ts`.
 */
import type { Logger } from 'pino';
import { UfdlClient } from '../client/api.js';
import { pollFilter, pollFilterExcluding } from '../protocol/filter.js';
import { createExecutorRegistry } from './executors/registry.js';
import { detectHardware, nodeHardwareFacts } from './hardware/detect.js';
import { primaryIpv4 } from './hardware/ip.js';
import { fenceThresholdMs } from './health/fence.js';
import type { Readiness } from './health/readiness.js';
import { ServerWatch } from './health/server-watch.js';
import type { JobsShared } from './job/context.js';
import { JobsInFlight } from './job/in-flight.js';
import { JobLeases } from './job/leases.js';
import { openJournal } from './journal/index.js';
import { liveLogSettings } from './logs/settings.js';
import type { AgentMetrics } from './metrics.js';
import type { ResolvedAgentOptions } from './options.js';
import { evaluateCandidate, type TemplateCache } from './poll/candidates.js';
import { JobListReader } from './poll/job-list.js';
import { PollLoop } from './poll/loop.js';
import { WaitingReports } from './poll/waiting-reports.js';
import type { AgentDeps } from './ports.js';
import type { ServerContact } from './server-contact.js';
import type { StartedParts } from './start/sequence.js';

/** Every part of a running agent. */
export interface RunningParts extends StartedParts {
  watch: ServerWatch;
  loop: PollLoop;
}

/** What the parts need of the agent: its log, counters and contact, and what it decides. */
export interface AgentSide {
  /** The options in force when the parts are made. */
  readonly options: ResolvedAgentOptions;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly contact: ServerContact;
  readonly readiness: Readiness;
  readonly templates: TemplateCache;
  emit: JobsShared['emit'];
  /** Whether claimed jobs may go on to run (the agent is starting or running). */
  takesWork(): boolean;
  /** Whether the poll loop takes new jobs now (running, ready, not fenced). */
  accepting(): boolean;
  /** Resolves when {@link accepting} may have changed. */
  acceptingChanged(): Promise<void>;
  /** A job that failed preparation: the poll loop skips it for a while. */
  skip(jobPk: number, reason: string): void;
  /** A job's journal write failed (disk full, I/O error): the agent hands its jobs to recovery. */
  journalWriteFailed(jobPk: number, err: unknown): void;
  /** Self-fencing stopped these jobs. */
  onFenced(e: { jobs: number[]; silentMs: number }): void;
  /** The server answered after self-fencing. */
  onFenceLifted(): void;
}

/** The real dependencies of an agent with these options. */
export function realDeps(options: ResolvedAgentOptions, log: Logger): AgentDeps {
  const clientLog = log.child({ component: 'client' });
  return {
    openJournal: () =>
      openJournal({ path: options.journalFile, serverUrl: options.serverUrl, otherServerUrls: options.serverUrls.slice(1), logger: log.child({ component: 'journal' }) }),
    createClient: () =>
      new UfdlClient({
        serverUrl: options.serverUrls,
        failbackAfterMs: options.failbackAfterMs,
        username: options.username,
        password: options.password,
        responseTimeoutMs: options.requestTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs * 2,
        userAgent: 'ufdl-agent',
        logger: clientLog,
      }),
    detectHardware: async () => {
      const hw = await detectHardware({ address: options.nodeIp });
      log.debug({ nvidia: hw.nvidia, gpus: hw.gpus.length }, 'hardware detected');
      return nodeHardwareFacts(hw);
    },
    createExecutors: (agentId) =>
      createExecutorRegistry({
        docker: options.docker,
        dockerOptions: { network: options.dockerNetwork, pull: options.dockerPull, agentId },
      }),
    detectIp: async () => (await primaryIpv4(options.nodeIp)).address,
  };
}

/**
 * The jobs in flight, and — with lost-node recovery on the server — the leases their children's
 * wrappers watch (`job/leases.ts`), so that a frozen agent's jobs stop by themselves.
 */
export function createJobs(side: AgentSide, parts: Pick<StartedParts, 'journal' | 'caps' | 'slots' | 'executors'>): Pick<StartedParts, 'jobs' | 'leases'> {
  const { options: o, log, metrics } = side;
  const leases = leasesFor(side, parts.caps, (jobPk) => {
    metrics.fences.inc();
    jobs.get(jobPk)?.stop('fenced');
  });
  const jobs: JobsInFlight = new JobsInFlight({
    slots: parts.slots,
    journal: parts.journal,
    executor: parts.executors,
    options: o,
    liveLog: liveLogSettings(o, parts.caps),
    useWebSocket: parts.caps?.extensions.websocket.auth === true,
    leases,
    log,
    metrics,
    emit: side.emit,
    accepting: () => side.takesWork(),
    skip: (jobPk, reason) => side.skip(jobPk, reason),
    journalWriteFailed: (jobPk, err) => side.journalWriteFailed(jobPk, err),
    onSlotsChanged: () => side.readiness.update(),
  });
  return { jobs, leases };
}

/** The leases of an agent whose server has lost-node recovery (else none: nothing would give a job away). */
function leasesFor(side: AgentSide, caps: StartedParts['caps'], onLapsed: (jobPk: number) => void): JobLeases | undefined {
  const lost = caps?.extensions.lost_node;
  if (!lost) return undefined;
  return new JobLeases({
    contact: side.contact,
    thresholdMs: fenceThresholdMs(lost.lost_after_seconds, side.options.fenceMarginMs),
    killGraceMs: side.options.killGraceMs,
    log: side.log,
    onLapsed: (jobPk, overdueS) => {
      side.log.error(
        { job: jobPk, overdueS: Math.round(overdueS) },
        'the lease of a running job lapsed (the agent was stopped, frozen or cut off from the server): its wrapper stops the job, which will run again elsewhere',
      );
      onLapsed(jobPk);
    },
  });
}

/**
 * The parts that run on their own once start-up is done: the server watch (heartbeat and
 * self-fencing), started here, and the poll loop, which the agent starts once it is `running`.
 */
export function wireRunningParts(side: AgentSide, started: StartedParts): RunningParts {
  const watch = new ServerWatch({
    contact: side.contact,
    capabilities: started.caps,
    heartbeatIntervalMs: side.options.heartbeatIntervalMs,
    fenceMarginMs: side.options.fenceMarginMs,
    journal: started.journal,
    log: side.log,
    // Each job's own node: one recovery continued may report as a node no slot of the plan registers.
    busyNodes: () => [...new Map(started.jobs.all().map((r) => [r.api.nodePk, r.api])).values()],
    firstNode: () => started.nodes.all[0]?.api,
    withChild: () => started.jobs.withChild(),
    afterBeat: () => side.readiness.update(),
    onFenced: (e) => side.onFenced(e),
    onFenceLifted: () => side.onFenceLifted(),
  });
  watch.start();
  // A slot whose node works a job of another slot (one beyond the plan) takes no job until it left.
  const { slots, nodes, jobs } = started;
  slots.setNodeBusy((spec) => {
    const nodePk = nodes.get(spec.index)?.node.pk;
    return nodePk !== undefined && jobs.reportsAs(nodePk);
  });
  return { ...started, watch, loop: createPollLoop(side, started) };
}

/**
 * Candidates a poll asks for beyond the jobs this node skips. The head of the queue is all a poll
 * needs — the node claims the first job it can run — and a deep queue (ten thousand waiting jobs)
 * would otherwise be sent whole with every poll. The skipped jobs sit at the head (they are the
 * oldest the node has seen), so asking for them plus this many leaves this many to try.
 */
const POLL_CANDIDATES = 32;
/**
 * The skipped jobs a poll names at most (the head of the queue first): beyond them a node that skips
 * the whole head is answered at once and waits its idle schedule, as it does on the reference.
 */
const MAX_EXCLUDED = 64;

/**
 * The poll loop as the agent runs it (`poll/loop.ts` is the loop itself): candidates listed by each
 * slot's node, evaluated against the cached templates and the executor allow-list, claimed through
 * the jobs in flight; every poll counted in the metrics and told to {@link Readiness} (refused
 * credentials make the agent not ready until a poll is answered again). Wake-up waits are capped by
 * what the server offers.
 */
function createPollLoop(side: AgentSide, parts: StartedParts): PollLoop {
  const { options: o, metrics, readiness, templates, log } = side;
  const { nodes, slots } = parts;
  const wait = parts.caps?.extensions.wait;
  const excludes = wait?.pk_exclusions === true;
  const lists = new JobListReader(log);
  const waiting = new WaitingReports(() => nodes.all[0]?.api, log);
  /** The client of a slot's node (a slot the loop holds always has one), or the first node's. */
  const apiOf = (slotIndex?: number) => {
    const node = slotIndex === undefined ? nodes.all[0] : nodes.get(slotIndex);
    if (!node) throw new Error(`no node for slot ${slotIndex ?? 'any'}`);
    return node.api;
  };
  const loop: PollLoop = new PollLoop(
    {
      slots,
      log,
      accepting: () => side.accepting(),
      acceptingChanged: () => side.acceptingChanged(),
      listCandidates: async (slot, waitSeconds, signal) => {
        const limit = POLL_CANDIDATES + loop.skipList.size;
        // Checked entry by entry: the server's answer is not trusted to be what the type says.
        const options = { signal, limit, asSent: true };
        // A wake-up server that groups filters by their pk exclusions is told which jobs this node
        // skips, so that it waits when they are all the queue has; the reference (and an older server
        // of ours, which would ask each node's filter a query per job) gets the worker's filter.
        const filter = waitSeconds === null || !excludes ? pollFilter() : pollFilterExcluding(loop.skipList.current().slice(0, MAX_EXCLUDED));
        const body: unknown = await apiOf(slot.index).listJobs(filter, waitSeconds === null ? options : { ...options, waitSeconds });
        return lists.read(body);
      },
      evaluate: async (job, signal) => {
        const evaluation = await evaluateCandidate(job, apiOf(), templates, parts.executors, signal);
        return evaluation.ok ? { ok: true } : evaluation;
      },
      claim: async (slot, job) => {
        // The slot left the plan while it polled (fewer slots configured, its GPU gone).
        if (slots.isRetiring(slot.index)) return 'declined';
        const template = await templates.peek(job.template.pk)?.catch(() => undefined);
        if (!template) return 'lost';
        return parts.jobs.claim(slot, job, template, apiOf(slot.index));
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
      excludedPerPoll: excludes ? MAX_EXCLUDED : 0,
      watchdogMs: o.watchdogMs > 0 ? o.watchdogMs : o.waitSeconds * 1000 + 3 * o.requestTimeoutMs + 60_000,
    },
  );
  return loop;
}
