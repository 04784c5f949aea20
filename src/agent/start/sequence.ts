/**
 * The agent's start-up, in order (DESIGN §5): open the journal (a second agent on the same journal
 * stops here, before touching the server), start the status endpoint, log in, ask for the server's
 * capabilities, detect the hardware and executors, plan the slots, register each slot's node, create
 * the runners, and recover the journal's unfinished jobs — all before the first poll.
 *
 * Each part goes into {@link AgentParts} as soon as it exists, so that `close()` during start-up
 * closes what was opened. Steps that need the server wait for it (`start-up.ts`).
 */
import type { Logger } from 'pino';
import type { UfdlClient } from '../../client/api.js';
import type { Capabilities, HardwareJson } from '../../protocol/wire.js';
import type { ServerContact } from '../health/fence.js';
import type { Journal } from '../journal/journal.js';
import type { PollLoop } from '../poll/loop.js';
import type { AgentMetrics } from '../metrics.js';
import { SlotNodes } from '../slots/nodes.js';
import { OutageLog } from '../health/outage-log.js';
import { removeOrphanJobDirs } from './orphan-dirs.js';
import type { ResolvedAgentOptions } from '../options.js';
import type { ExecutorPort } from '../ports.js';
import { recover } from './recovery.js';
import type { NodeHardwareFacts } from '../slots/registration.js';
import type { Runners } from '../job/in-flight.js';
import type { ServerWatch } from '../health/server-watch.js';
import { planSlots, Slots } from '../slots/slots.js';
import { loginUntilAccepted, retryStartupStep } from './wait-for-server.js';
import type { StatusServer } from '../health/status-server.js';

/** What the agent needs from the outside world; `index.ts` supplies the real ones, tests may not. */
export interface AgentDeps {
  openJournal(): Journal;
  /** A new, unauthenticated client without a node pk. */
  createClient(): UfdlClient;
  detectHardware(): Promise<NodeHardwareFacts>;
  createExecutors(): Promise<ExecutorPort & { describe?(): unknown }>;
  detectIp(): Promise<string>;
}

/** What the agent has opened or created so far (each part once its start-up step is done). */
export interface AgentParts {
  journal?: Journal;
  status?: StatusServer;
  /** The logged-in client; each slot's node acts through a sibling of it (one login for all slots). */
  base?: UfdlClient;
  /** `undefined`: not asked yet; `null`: a reference server. */
  caps?: Capabilities | null;
  executors?: ExecutorPort & { describe?(): unknown };
  slots?: Slots;
  nodes?: SlotNodes;
  work?: Runners;
  loop?: PollLoop;
  watch?: ServerWatch;
}

export interface StartUpContext {
  options: ResolvedAgentOptions;
  deps: AgentDeps;
  log: Logger;
  metrics: AgentMetrics;
  contact: ServerContact;
  /** Aborted when the agent stops: the waits for the server give up. */
  signal: AbortSignal;
  parts: AgentParts;
  /** Start the status endpoint (if configured) once the journal is open. */
  startStatus(): Promise<StatusServer | undefined>;
  /** The credentials' problem while login is refused, or null once they work. */
  onAuthProblem(problem: string | null): void;
  /** The runners, once journal, slots and executors exist. */
  createRunners(): Runners;
  onRecovered(jobPk: number, action: string): void;
}

/** Run the start-up steps; the agent starts polling afterwards unless its signal aborted. */
export async function startUp(ctx: StartUpContext): Promise<void> {
  const { parts, signal } = ctx;
  const journal = openJournal(ctx);
  parts.status = await ctx.startStatus();
  ctx.log.info({ journal: journal.path, status: parts.status?.url, server: ctx.options.serverUrl }, 'agent starting');
  const base = ctx.deps.createClient();
  parts.base = base;
  watchReachability(ctx, base);
  await login(ctx);
  parts.caps = await retrying(ctx, 'capabilities', () => base.getCapabilities({ signal }));
  if (parts.caps === null) await warnIfNotStaff(ctx);
  await registerSlots(ctx, await detectMachine(ctx));
  parts.work = ctx.createRunners();
  await recoverJournal(ctx);
}

function openJournal(ctx: StartUpContext): Journal {
  const journal = ctx.deps.openJournal();
  ctx.parts.journal = journal;
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
}

/** Hardware, executors, the server's GPU generations, the node's address, and the slots. */
async function detectMachine(ctx: StartUpContext): Promise<Machine> {
  const { options: o, parts, signal } = ctx;
  const hardware = await ctx.deps.detectHardware();
  parts.executors = await ctx.deps.createExecutors();
  const generations = hardware.gpus.length > 0 ? await retrying(ctx, 'hardware list', () => parts.base!.listHardware({ signal })) : [];
  const ip = o.nodeIp ?? (await ctx.deps.detectIp());
  const specs = planSlots(o.slots, hardware.gpus.map((g) => g.index), o.nodeIndex);
  parts.slots = new Slots(specs);
  ctx.metrics.slotsTotal.set(specs.length);
  ctx.log.info(
    { slots: specs.length, gpus: hardware.gpus.length, executors: parts.executors.describe?.(), capabilities: parts.caps?.extensions ?? null },
    'hardware and executors',
  );
  return { hardware, generations, ip };
}

/** Register each slot's node; the journal keeps slot 0's identity and the other slots' pks. */
async function registerSlots(ctx: StartUpContext, { hardware, generations, ip }: Machine): Promise<void> {
  const { parts, log } = ctx;
  const journal = parts.journal!;
  const nodes = new SlotNodes({
    root: parts.base!,
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
  parts.nodes = nodes;
  await retrying(ctx, 'registration', () => nodes.registerAll(parts.slots!.specs()));
}

/** Recovery before the first poll (DESIGN §5). */
async function recoverJournal(ctx: StartUpContext): Promise<void> {
  const { options: o, parts } = ctx;
  const report = await recover({
    journal: parts.journal!,
    slots: parts.nodes!.all,
    apiForNode: (pk) => parts.nodes!.clientFor(pk),
    executor: parts.executors!,
    serverUrl: o.serverUrl,
    workDir: o.workDir,
    errorBackoffS: o.errorBackoffS,
    maxRestarts: o.maxRestarts,
    killGraceMs: o.killGraceMs,
    log: ctx.log,
    signal: ctx.signal,
    adoptRunner: (jobPk, slot, api) => parts.work!.adopt(jobPk, slot, api),
    onAction: ctx.onRecovered,
  });
  // Directories of jobs whose entry was closed but whose directory was not yet removed (a crash in
  // between), unless the operator keeps job directories on purpose.
  if (!o.keepJobDirs) {
    await removeOrphanJobDirs(o.workDir, new Set(parts.journal!.unfinished().map((r) => r.jobPk)), ctx.log);
  }
  if (report.settled.length + report.continuing.length + report.unknownCurrent.length > 0) {
    ctx.log.info(
      { settled: report.settled.length, continuing: report.continuing.map((c) => c.jobPk), unknownCurrentJobs: report.unknownCurrent },
      'recovery done',
    );
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

/**
 * Against a server without extensions (the reference backend), only a staff user can remove an output
 * an earlier attempt of a job left behind, which the re-run of a requeued job needs (see
 * `outputs/server-copy.ts`). Say so once, at start, rather than at the first such job.
 */
async function warnIfNotStaff(ctx: StartUpContext): Promise<void> {
  const username = ctx.options.username;
  try {
    const user = await ctx.parts.base!.getUser(username, { signal: ctx.signal });
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
function login(ctx: StartUpContext): Promise<void> {
  return loginUntilAccepted(ctx.parts.base!, {
    authRetryS: ctx.options.authRetryS,
    errorBackoffS: ctx.options.errorBackoffS,
    serverUrl: ctx.options.serverUrl,
    signal: ctx.signal,
    log: ctx.log,
    contact: ctx.contact,
    onAuthProblem: ctx.onAuthProblem,
  });
}

/** A start-up step, retried on the error back-off while the server is unreachable. */
function retrying<T>(ctx: StartUpContext, what: string, step: () => Promise<T>): Promise<T> {
  return retryStartupStep(what, step, {
    errorBackoffS: ctx.options.errorBackoffS,
    signal: ctx.signal,
    log: ctx.log,
    relogin: () => login(ctx),
  });
}
