/**
 * The agent's start-up, in order (docs/ARCHITECTURE.md, "Start-up"): open the journal (a second agent
 * on the same journal stops here, before touching the server), start the status endpoint, log in,
 * ask for the server's capabilities, detect the hardware and executors, plan the slots, register each
 * slot's node, create the jobs in flight, and recover the journal's unfinished jobs — all before the
 * first poll.
 *
 * Each part goes into `opened` as soon as it exists, so that `close()` during start-up closes what
 * was opened; the sequence returns them all, typed, once it is done. Steps that need the server wait
 * for it (`wait-for-server.ts`).
 */
import type { Logger } from 'pino';
import type { UfdlClient } from '../../client/api.js';
import type { Capabilities, HardwareJson } from '../../protocol/wire.js';
import { dockerAgentId, earlierAgentId } from '../executors/docker.js';
import type { NodeHardwareFacts } from '../hardware/detect.js';
import { OutageLog } from '../health/outage-log.js';
import type { StatusServer } from '../health/status-server.js';
import type { JobsInFlight } from '../job/in-flight.js';
import type { JobLeases } from '../job/leases.js';
import type { Journal } from '../journal/journal.js';
import type { AgentMetrics } from '../metrics.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { AgentDeps, StartUpExecutorPort } from '../ports.js';
import type { ServerContact } from '../server-contact.js';
import { SlotNodes } from '../slots/nodes.js';
import { planSlots, Slots } from '../slots/slots.js';
import { removeOrphanJobDirs } from './orphan-dirs.js';
import { recover } from './recovery.js';
import { loginUntilAccepted, retryStartupStep } from './wait-for-server.js';

/** Every part start-up opens, once it is done. */
export interface StartedParts {
  journal: Journal;
  /** The status endpoint; undefined when it is turned off. */
  status: StatusServer | undefined;
  /** The logged-in client; each slot's node acts through a sibling of it (one login for all slots). */
  base: UfdlClient;
  /** The server's extensions; null for a reference server. */
  caps: Capabilities | null;
  executors: StartUpExecutorPort & { describe?(): unknown };
  slots: Slots;
  nodes: SlotNodes;
  /** The children's leases, when the server has lost-node recovery. */
  leases: JobLeases | undefined;
  jobs: JobsInFlight;
}

export interface StartUpContext {
  options: ResolvedAgentOptions;
  deps: AgentDeps;
  log: Logger;
  metrics: AgentMetrics;
  contact: ServerContact;
  /** Aborted when the agent stops: the waits for the server give up. */
  signal: AbortSignal;
  /** Each part as soon as it is open (`close()` during start-up closes these). */
  opened: Partial<StartedParts>;
  /** Start the status endpoint (if configured) once the journal is open. */
  startStatus(): Promise<StatusServer | undefined>;
  /** The credentials' problem while login is refused, or null once they work. */
  onAuthProblem(problem: string | null): void;
  /** The jobs in flight and their leases, once journal, capabilities, slots and executors exist. */
  createJobs(parts: Pick<StartedParts, 'journal' | 'caps' | 'slots' | 'executors'>): Pick<StartedParts, 'jobs' | 'leases'>;
  onRecovered(jobPk: number, action: string): void;
}

/** Run the start-up steps; the agent starts polling afterwards unless its signal aborted. */
export async function startUp(ctx: StartUpContext): Promise<StartedParts> {
  const { opened, signal } = ctx;
  const journal = (opened.journal = openJournal(ctx));
  const status = (opened.status = await ctx.startStatus());
  ctx.log.info({ journal: journal.path, status: status?.url, server: ctx.options.serverUrl }, 'agent starting');
  const base = (opened.base = ctx.deps.createClient());
  watchReachability(ctx, base);
  countServerSwitches(ctx, base);
  await login(ctx, base);
  const caps = (opened.caps = await retrying(ctx, base, 'capabilities', () => base.getCapabilities({ signal })));
  if (caps === null) await warnIfNotStaff(ctx, base);
  const machine = await detectMachine(ctx, journal, base, caps);
  const nodes = await registerSlots(ctx, journal, base, machine);
  const { jobs, leases } = ctx.createJobs({ journal, caps, slots: machine.slots, executors: machine.executors });
  opened.jobs = jobs;
  opened.leases = leases;
  const started: StartedParts = { journal, status, base, caps, executors: machine.executors, slots: machine.slots, nodes, leases, jobs };
  await recoverJournal(ctx, started);
  return started;
}

function openJournal(ctx: StartUpContext): Journal {
  const journal = ctx.deps.openJournal();
  // Done entries older than a week only make the file grow; unfinished ones are never pruned.
  const pruned = journal.pruneDone(new Date(Date.now() - 7 * 24 * 3600_000));
  if (pruned > 0) ctx.log.debug({ pruned }, 'pruned old journal entries');
  ctx.contact.onAnswer(() => {
    if (!journal.closed) journal.noteContact();
  });
  return journal;
}

interface Machine {
  hardware: NodeHardwareFacts;
  generations: HardwareJson[];
  ip: string;
  executors: StartedParts['executors'];
  slots: Slots;
}

/** Hardware, executors, the server's GPU generations, the node's address, and the slots. */
async function detectMachine(ctx: StartUpContext, journal: Journal, base: UfdlClient, caps: Capabilities | null): Promise<Machine> {
  const { options: o, opened, signal } = ctx;
  const hardware = await ctx.deps.detectHardware();
  const executors = (opened.executors = await ctx.deps.createExecutors(await agentIdentity(ctx, journal)));
  const generations = hardware.gpus.length > 0 ? await retrying(ctx, base, 'hardware list', () => base.listHardware({ signal })) : [];
  const ip = o.nodeIp ?? (await ctx.deps.detectIp());
  const specs = planSlots(o.slots, hardware.gpus.map((g) => g.index), o.nodeIndex);
  const slots = (opened.slots = new Slots(specs));
  ctx.metrics.slotsTotal.set(specs.length);
  ctx.log.info(
    { slots: specs.length, gpus: hardware.gpus.length, executors: executors.describe?.(), capabilities: caps?.extensions ?? null },
    'hardware and executors',
  );
  return { hardware, generations, ip, executors, slots };
}

/**
 * Who runs the job containers, for their labels: fixed when the journal is new (its host and work
 * directory then) and kept across re-created containers. A journal of an earlier version, which kept
 * none, takes the label its unfinished jobs' containers carry, if any are still there (under any
 * address of the server: one started before `server.url` was reordered is labelled with another).
 */
async function agentIdentity(ctx: StartUpContext, journal: Journal): Promise<string> {
  const o = ctx.options;
  let initial = dockerAgentId(o.workDir);
  if (!journal.hasIdentity() && o.docker !== false) {
    const jobs = journal.unfinished().map((r) => ({ jobPk: r.jobPk, attempt: r.attempts }));
    if (jobs.length > 0) initial = (await earlierAgentId(jobs, o.serverUrls, o.workDir)) ?? initial;
  }
  return journal.identity(initial);
}

/** Register each slot's node; the journal keeps slot 0's identity and the other slots' pks. */
async function registerSlots(ctx: StartUpContext, journal: Journal, base: UfdlClient, { hardware, generations, ip, slots }: Machine): Promise<SlotNodes> {
  const { log } = ctx;
  const nodes = new SlotNodes({
    root: base,
    ip,
    hardware,
    generations,
    log,
    onRegistered: (slot, registered) => {
      if (slot.index === 0) {
        const before = journal.server()?.nodePk;
        if (before != null && before !== registered.node.pk) {
          log.warn({ journal: before, server: registered.node.pk }, 'LOUD: the node pk in the journal differs from the one the server has for this identity');
        }
        journal.saveNode({ nodePk: registered.node.pk, ip, index: slot.nodeIndex, hardware });
      } else {
        journal.setSetting(`slot-node:${slot.index}`, String(registered.node.pk));
      }
    },
  });
  ctx.opened.nodes = nodes;
  await retrying(ctx, base, 'registration', () => nodes.registerAll(slots.specs()));
  return nodes;
}

/** Recovery before the first poll (docs/ARCHITECTURE.md, "Recovery"). */
async function recoverJournal(ctx: StartUpContext, parts: StartedParts): Promise<void> {
  const { options: o } = ctx;
  const report = await recover({
    journal: parts.journal,
    slots: parts.nodes.all,
    apiForNode: (pk) => parts.nodes.clientFor(pk),
    executor: parts.executors,
    options: o,
    log: ctx.log,
    signal: ctx.signal,
    adoptRunner: (jobPk, slot, api, dir) => parts.jobs.adopt(jobPk, slot, api, dir),
    onAction: ctx.onRecovered,
  });
  // Directories of jobs whose entry was closed but whose directory was not yet removed (a crash in
  // between), unless the operator keeps job directories on purpose. An unfinished entry of any server
  // in the journal owns its directory.
  if (!o.keepJobDirs) {
    await removeOrphanJobDirs(o.workDir, parts.journal.unfinishedOfEveryServer(), ctx.log);
  }
  await removeOrphanContainers(parts, o.serverUrls, ctx.log);
  if (report.settled.length + report.continuing.length + report.unknownCurrent.length > 0) {
    ctx.log.info(
      { settled: report.settled.length, continuing: report.continuing.map((c) => c.jobPk), unknownCurrentJobs: report.unknownCurrent },
      'recovery done',
    );
  }
}

/**
 * Containers of this agent that no unfinished journal entry owns (the entry was closed, or belongs to
 * another attempt) are left by a crash at the wrong moment: remove them, and say so.
 */
async function removeOrphanContainers(parts: StartedParts, serverUrls: readonly string[], log: StartUpContext['log']): Promise<void> {
  const owned = new Set(parts.journal.unfinished().map((r) => `${r.jobPk}:${r.attempts}`));
  try {
    const swept = await parts.executors.sweepOutside(serverUrls, (jobPk, attempt) => owned.has(`${jobPk}:${attempt}`));
    if (swept.removed.length > 0) log.warn({ containers: swept.removed }, 'removed job containers that no unfinished journal entry owns');
    for (const failed of swept.failed) log.error({ container: failed.name, err: failed.reason }, 'could not remove a job container that no journal entry owns');
  } catch (err) {
    log.warn({ err: String(err) }, 'could not look for job containers left behind');
  }
}

/**
 * Every attempt of every call (all slots' clients share the connection layer) tells the contact
 * whether the server answered; the outage log turns that into one warning and one recovery line.
 */
function watchReachability(ctx: StartUpContext, base: UfdlClient): void {
  base.onReachability((answered, err) => (answered ? ctx.contact.ok() : ctx.contact.failed(err)));
  new OutageLog({
    contact: ctx.contact,
    log: ctx.log,
    retry: { pollBackoffS: ctx.options.errorBackoffS, heartbeatS: ctx.options.heartbeatIntervalMs / 1000 },
  });
}

/** The address in use and the switches between addresses, as metrics (the client logs each switch). */
function countServerSwitches(ctx: StartUpContext, base: UfdlClient): void {
  const show = (current: string) => {
    for (const url of ctx.options.serverUrls) ctx.metrics.serverAddress.set({ url }, `${url}/` === current ? 1 : 0);
  };
  show(base.serverUrl);
  base.onServerSwitch((_from, to) => {
    ctx.metrics.serverSwitches.inc();
    show(to);
  });
}

/**
 * Against a server without extensions (the reference backend), only a staff user can remove an output
 * an earlier attempt of a job left behind, which the re-run of a requeued job needs (see
 * `outputs/server-copy.ts`). Say so once, at start, rather than at the first such job.
 */
async function warnIfNotStaff(ctx: StartUpContext, base: UfdlClient): Promise<void> {
  const username = ctx.options.username;
  try {
    const user = await base.getUser(username, { signal: ctx.signal });
    if (user.is_staff) return;
    ctx.log.warn(
      { user: username },
      "the agent's user is not staff: on a reference backend, a requeued job's re-run cannot replace the outputs its " +
        'earlier attempt left (only staff may remove outputs there) and ends with an error; run the agent as a staff user',
    );
  } catch (err) {
    ctx.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'could not read the agent user (to check it is staff)');
  }
}

/** Log in, re-checking on a bounded schedule while the credentials are refused (never a crash loop). */
function login(ctx: StartUpContext, base: UfdlClient): Promise<void> {
  return loginUntilAccepted(base, {
    authRetryS: ctx.options.authRetryS,
    errorBackoffS: ctx.options.errorBackoffS,
    serverUrl: ctx.options.serverUrls.join(', '),
    signal: ctx.signal,
    log: ctx.log,
    contact: ctx.contact,
    onAuthProblem: ctx.onAuthProblem,
  });
}

/** A start-up step, retried on the error back-off while the server is unreachable. */
function retrying<T>(ctx: StartUpContext, base: UfdlClient, what: string, step: () => Promise<T>): Promise<T> {
  return retryStartupStep(what, step, {
    errorBackoffS: ctx.options.errorBackoffS,
    signal: ctx.signal,
    log: ctx.log,
    relogin: () => login(ctx, base),
  });
}
