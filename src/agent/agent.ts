/**
 * The agent daemon (`ufdl-agent run`): one {@link Agent} owns the journal, the slots and their nodes,
 * the poll loop, the job runners, the heartbeat, self-fencing and the status endpoint.
 *
 * Lifecycle (`lifecycle.ts`): `starting` (journal, login, capabilities, hardware, registration,
 * recovery) → `running` → `draining` (first SIGTERM) → `stopping` → `stopped`; `failed` on a fatal
 * error. One {@link Agent.transition} checks every edge and logs `{from, to}`.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { statfsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { UfdlClient } from '../client/api.js';
import { isClientError } from '../client/errors.js';
import { pollFilter } from '../protocol/filter.js';
import type { Capabilities, JobJson } from '../protocol/wire.js';
import { evaluateCandidate, TemplateCache } from './candidates.js';
import { Fence, fenceThresholdMs, ServerContact } from './fencing.js';
import { Heartbeat } from './heartbeat.js';
import type { RunOutcome } from './job-runner.js';
import type { Journal } from './journal/journal.js';
import { canTransition, IllegalStateError, type AgentState } from './lifecycle.js';
import { PollLoop, type ClaimOutcome, type LoopContext } from './loop.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';
import { SlotNodes, type SlotNode } from './nodes.js';
import type { ResolvedAgentOptions } from './options.js';
import type { ExecutorPort } from './ports.js';
import { Runners } from './runners.js';
import { recover } from './recovery.js';
import type { NodeHardwareFacts } from './registration.js';
import { planSlots, Slots, type SlotSpec } from './slots.js';
import { loginUntilAccepted, retryStartupStep } from './start-up.js';
import { capabilitiesSummary, notReadyReasons, type AgentStatus } from './agent-status.js';
export type { AgentStatus } from './agent-status.js';
import { startStatusServer, type Health, type StatusServer } from './status-server.js';

/** What the agent needs from the outside world; `index.ts` supplies the real ones, tests may not. */
export interface AgentDeps {
  openJournal(): Journal;
  /** A new, unauthenticated client without a node pk. */
  createClient(): UfdlClient;
  detectHardware(): Promise<NodeHardwareFacts>;
  createExecutors(): Promise<ExecutorPort & { describe?(): unknown }>;
  detectIp(): Promise<string>;
}

export interface AgentEvents {
  state: [{ from: AgentState; to: AgentState }];
  ready: [boolean];
  recovered: [{ jobPk: number; action: string }];
  acquired: [{ jobPk: number; slot: number }];
  started: [{ jobPk: number; slot: number; pid: number }];
  progressed: [{ jobPk: number; progress: number; data: Record<string, unknown> }];
  finished: [{ jobPk: number; slot: number; outcome: RunOutcome; error: string | null }];
  fenced: [{ jobs: number[]; silentMs: number }];
  drained: [];
  closing: [];
  closed: [];
  error: [Error];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly options: ResolvedAgentOptions;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly #deps: AgentDeps;
  readonly #contact = new ServerContact();
  readonly #templates = new TemplateCache();
  readonly #startedAt = new Date();
  /** Aborted when the agent stops: start-up waits, recovery and reporting retries give up. */
  readonly #stopSignal = new AbortController();
  #state: AgentState = 'starting';
  #journal: Journal | undefined;
  #base: UfdlClient | undefined;
  #caps: Capabilities | null | undefined;
  #executors: (ExecutorPort & { describe?(): unknown }) | undefined;
  #slots: Slots | undefined;
  #nodes: SlotNodes | undefined;
  #loop: PollLoop | undefined;
  #work: Runners | undefined;
  #heartbeat: Heartbeat | undefined;
  #fence: Fence | undefined;
  #status: StatusServer | undefined;
  #authProblem: string | null = null;
  #lowDisk: string | null = null;
  #fenced = false;
  #readyNow = false;
  #acceptingChanged: { promise: Promise<void>; resolve: () => void } | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;

  constructor(options: ResolvedAgentOptions, log: Logger, deps: AgentDeps) {
    super();
    // Long-lived: every start-up and recovery call listens to it (not a leak).
    setMaxListeners(0, this.#stopSignal.signal);
    this.options = options;
    this.log = log;
    this.#deps = deps;
    this.metrics = createAgentMetrics();
    this.#stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  get state(): AgentState {
    return this.#state;
  }

  /** The status endpoint's URL, once it listens. */
  get statusUrl(): string | undefined {
    return this.#status?.url;
  }

  /** Resolves once the agent has stopped and closed everything (after a drain, a stop or `close()`). */
  whenStopped(): Promise<void> {
    return this.#stopped;
  }

  /** Move to `to`, or throw naming the current state. Logs `{from, to}`. */
  transition(to: AgentState): void {
    const from = this.#state;
    if (!canTransition(from, to)) throw new IllegalStateError(from, `go to ${to}`);
    this.#state = to;
    this.log.info({ from, to }, `agent ${to}`);
    this.emit('state', { from, to });
    this.#notifyAccepting();
  }

  // ── start ─────────────────────────────────────────────────────────────────────────────────────

  /** Start up; resolves once the agent is `running` (or has been stopped meanwhile). */
  async start(): Promise<void> {
    if (this.#state !== 'starting' || this.#journal) throw new IllegalStateError(this.#state, 'start');
    try {
      await this.#startUp();
    } catch (err) {
      if (this.#stopSignal.signal.aborted && this.#state !== 'starting') return; // stopped during start-up
      this.log.error({ err }, 'the agent could not start');
      if (canTransition(this.#state, 'failed')) this.transition('failed');
      if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
      await this.close();
      throw err;
    }
  }

  async #startUp(): Promise<void> {
    const o = this.options;
    const signal = this.#stopSignal.signal;
    // The journal first: a second agent on the same journal must stop here, before touching the server.
    this.#journal = this.#deps.openJournal();
    const journal = this.#journal;
    // Done entries older than a week only make the file grow; unfinished ones are never pruned.
    const pruned = journal.pruneDone(new Date(Date.now() - 7 * 24 * 3600_000));
    if (pruned > 0) this.log.debug({ pruned }, 'pruned old journal entries');
    this.#contact.onAnswer(() => {
      if (!journal.closed) journal.noteContact();
    });
    if (o.status) this.#status = await startStatusServer(this, o.status);
    this.log.info({ journal: this.#journal.path, status: this.#status?.url, server: o.serverUrl }, 'agent starting');

    this.#base = this.#deps.createClient();
    await this.#login(this.#base, signal);
    this.#caps = await this.#retrying('capabilities', () => this.#base!.getCapabilities({ signal }), signal);
    const hardware = await this.#deps.detectHardware();
    this.#executors = await this.#deps.createExecutors();
    const generations = hardware.gpus.length > 0 ? await this.#retrying('hardware list', () => this.#base!.listHardware({ signal }), signal) : [];
    const ip = o.nodeIp ?? (await this.#deps.detectIp());
    const specs = planSlots(o.slots, hardware.gpus.map((g) => g.index), o.nodeIndex);
    this.#slots = new Slots(specs);
    this.metrics.slotsTotal.set(specs.length);
    this.log.info(
      { slots: specs.length, gpus: hardware.gpus.length, executors: this.#executors.describe?.(), capabilities: this.#caps?.extensions ?? null },
      'hardware and executors',
    );

    this.#nodes = new SlotNodes({
      createClient: () => this.#newClient(),
      contact: this.#contact,
      ip,
      hardware,
      generations,
      log: this.log,
      onRegistered: (slot, registered) => {
        const journal = this.#journal!;
        if (slot.index === 0) {
          const before = journal.server()?.nodePk;
          if (before != null && before !== registered.node.pk) {
            this.log.warn({ journal: before, server: registered.node.pk }, 'LOUD: the node pk in the journal differs from the one the server has for this identity');
          }
          journal.saveNode({ nodePk: registered.node.pk, ip, index: slot.nodeIndex, hardware });
        } else {
          journal.setSetting(`slot-node:${slot.index}`, String(registered.node.pk));
        }
      },
    });
    await this.#retrying('registration', () => this.#nodes!.registerAll(specs), signal);
    this.#work = this.#createRunners();

    // Recovery before the first poll (DESIGN §5).
    const report = await recover({
      journal: this.#journal,
      slots: this.#nodes.all,
      apiForNode: (pk) => this.#nodes!.clientFor(pk),
      executor: this.#executors,
      serverUrl: o.serverUrl,
      workDir: o.workDir,
      errorBackoffS: o.errorBackoffS,
      maxRestarts: o.maxRestarts,
      killGraceMs: o.killGraceMs,
      log: this.log,
      signal,
      adoptRunner: (jobPk, slot, api) => this.#work!.adopt(jobPk, slot, api),
      onAction: (jobPk, action) => {
        this.metrics.recoveries.inc({ action });
        this.emit('recovered', { jobPk, action });
      },
    });
    if (report.settled.length + report.continuing.length + report.unknownCurrent.length > 0) {
      this.log.info(
        { settled: report.settled.length, continuing: report.continuing.map((c) => c.jobPk), unknownCurrentJobs: report.unknownCurrent },
        'recovery done',
      );
    }
    if (signal.aborted) return;

    this.#startTimers();
    this.#loop = new PollLoop(this.#loopContext(), {
      pollScheduleS: o.pollScheduleS,
      errorBackoffS: o.errorBackoffS,
      waitSeconds: this.#caps?.extensions.wait ? Math.min(o.waitSeconds, this.#caps.extensions.wait.max_seconds) : null,
      skipFailedForMs: o.skipFailedForMs,
      watchdogMs: o.watchdogMs > 0 ? o.watchdogMs : o.waitSeconds * 1000 + 3 * o.requestTimeoutMs + 60_000,
    });
    this.transition('running');
    void this.#loop.start();
    this.#updateReady();
  }

  #newClient(): UfdlClient {
    return this.#deps.createClient();
  }

  /** Log in, re-checking on a bounded schedule while the credentials are refused (never a crash loop). */
  #login(client: UfdlClient, signal: AbortSignal): Promise<void> {
    return loginUntilAccepted(client, {
      authRetryS: this.options.authRetryS,
      errorBackoffS: this.options.errorBackoffS,
      serverUrl: this.options.serverUrl,
      signal,
      log: this.log,
      contact: this.#contact,
      onAuthProblem: (problem) => {
        this.#authProblem = problem;
        this.#updateReady();
      },
    });
  }

  /** A start-up step, retried on the error back-off while the server is unreachable. */
  #retrying<T>(what: string, step: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return retryStartupStep(what, step, {
      errorBackoffS: this.options.errorBackoffS,
      signal,
      log: this.log,
      relogin: () => this.#login(this.#base!, signal),
    });
  }

  #startTimers(): void {
    const o = this.options;
    const lost = this.#caps?.extensions.lost_node;
    const threshold = lost ? fenceThresholdMs(lost.lost_after_seconds, o.fenceMarginMs) : null;
    const beatMs = threshold === null ? o.heartbeatIntervalMs : Math.min(o.heartbeatIntervalMs, threshold / 4);
    this.#heartbeat = new Heartbeat({
      intervalMs: beatMs,
      beat: async () => {
        // While fenced with nothing running, one ping notices the server's return (nothing else asks).
        const busy = this.#busyNodes();
        const first = this.#nodes?.all[0];
        const nodes = busy.length === 0 && this.#fenced && first ? [first] : busy;
        await Promise.allSettled(nodes.map((n) => n.api.ping()));
        this.#updateReady();
      },
    });
    this.#heartbeat.start();
    if (threshold !== null) {
      this.#fence = new Fence({
        contact: this.#contact,
        thresholdMs: threshold,
        hasRunningJobs: () => (this.#work?.withChild().length ?? 0) > 0,
        onFence: (silentMs) => this.#fenceNow(silentMs),
      });
      this.#fence.start();
    }
  }

  #busyNodes(): SlotNode[] {
    const busy = new Set((this.#work?.all() ?? []).map((r) => r.slot.index));
    return (this.#nodes?.all ?? []).filter((n) => busy.has(n.spec.index));
  }

  #fenceNow(silentMs: number): void {
    const jobs = this.#work?.withChild() ?? [];
    this.#fenced = true;
    this.metrics.fences.inc();
    this.log.error(
      { silentMs, thresholdMs: this.#fence?.thresholdMs, jobs: jobs.map((r) => r.jobPk) },
      'SELF-FENCING: the server has been unreachable too long; stopping running jobs before the server gives them to another node',
    );
    for (const runner of jobs) {
      try {
        this.#journal?.record(runner.jobPk, { lastError: `fenced after ${Math.round(silentMs / 1000)} s without the server` });
      } catch {
        // the journal may not have the row any more
      }
      runner.stop('fenced');
    }
    this.emit('fenced', { jobs: jobs.map((r) => r.jobPk), silentMs });
    this.#updateReady();
    // Accept work again once the server answers.
    const off = this.#contact.onReachable(() => {
      off();
      this.#fenced = false;
      this.log.info({}, 'the server answers again after self-fencing');
      this.#updateReady();
      this.#notifyAccepting();
    });
  }

  // ── the loop's context ────────────────────────────────────────────────────────────────────────

  #loopContext(): LoopContext {
    return {
      slots: this.#slots!,
      log: this.log,
      accepting: () => this.#accepting(),
      acceptingChanged: () => {
        if (!this.#acceptingChanged) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => (resolve = r));
          this.#acceptingChanged = { promise, resolve };
        }
        return this.#acceptingChanged.promise;
      },
      listCandidates: (slot, waitSeconds, signal) => {
        const api = this.#nodes!.get(slot.index)!.api;
        return api.listJobs(pollFilter(), waitSeconds === null ? { signal } : { waitSeconds, signal });
      },
      evaluate: async (job, signal) => {
        const api = this.#nodes!.all[0]!.api;
        const evaluation = await evaluateCandidate(job, api, this.#templates, this.#executors!, signal);
        return evaluation.ok ? { ok: true } : evaluation;
      },
      claim: (slot, job) => this.#claim(slot, job),
      onPolled: (result, ms) => {
        this.metrics.polls.inc({ result });
        this.metrics.pollSeconds.observe(ms / 1000);
        if (this.#authProblem) this.log.info({}, 'the server accepts the credentials again');
        this.#authProblem = null;
        this.#updateReady();
      },
      onPollError: (err) => {
        this.metrics.polls.inc({ result: 'error' });
        if (isClientError(err, 'auth')) {
          // The password changed under a running agent: not ready, loudly, and the loop's error
          // back-off is the bounded re-check (never a restart loop).
          if (!this.#authProblem) {
            this.log.error({ user: this.options.username }, "NOT READY: the server refuses the agent's credentials; fix the password (or password_file)");
          }
          this.#authProblem = `the server refuses the credentials of user '${this.options.username}'`;
        }
        this.#updateReady();
      },
      onWatchdog: () => this.metrics.watchdogRestarts.inc(),
    };
  }

  #accepting(): boolean {
    // Not the credentials: the loop's own polls are what notice that they work again.
    if (this.#state !== 'running' || this.#fenced) return false;
    this.#checkDisk();
    return this.#lowDisk === null;
  }

  #notifyAccepting(): void {
    const changed = this.#acceptingChanged;
    this.#acceptingChanged = undefined;
    changed?.resolve();
  }

  #checkDisk(): void {
    try {
      const stats = statfsSync(this.options.workDir);
      const free = stats.bavail * stats.bsize;
      const low = free < this.options.minFreeDiskBytes ? `only ${free} bytes free in ${this.options.workDir} (min_free_disk ${this.options.minFreeDiskBytes})` : null;
      if (low && !this.#lowDisk) this.log.error({ free, min: this.options.minFreeDiskBytes }, 'NOT READY: low disk space; taking no jobs');
      this.#lowDisk = low;
    } catch {
      this.#lowDisk = null; // work dir not created yet: nothing to measure
    }
  }

  async #claim(slot: SlotSpec, job: JobJson): Promise<ClaimOutcome> {
    const template = await this.#templates.peek(job.template.pk)?.catch(() => undefined);
    if (!template) return 'lost';
    return this.#work!.claim(slot, job, template, this.#nodes!.get(slot.index)!.api);
  }

  #jobPks(): number[] {
    return (this.#work?.all() ?? []).map((r) => r.jobPk);
  }

  #createRunners(): Runners {
    return new Runners({
      slots: this.#slots!,
      journal: this.#journal!,
      executor: this.#executors!,
      options: this.options,
      useWebSocket: this.#caps?.extensions.websocket.auth === true,
      log: this.log,
      metrics: this.metrics,
      accepting: () => this.#state === 'running' || this.#state === 'starting',
      skip: (pk, reason) => this.#loop?.skip(pk, reason),
      events: {
        acquired: (e) => this.emit('acquired', e),
        started: (e) => this.emit('started', e),
        progressed: (e) => this.emit('progressed', e),
        finished: (e) => this.emit('finished', e),
      },
    });
  }

  // ── stopping ──────────────────────────────────────────────────────────────────────────────────

  /** First SIGTERM/SIGINT: take no new jobs; running ones may finish within `drainTimeoutMs`. */
  drain(reason = 'drain requested'): void {
    if (this.#state === 'starting') return this.stopNow(reason);
    if (this.#state !== 'running') return;
    this.transition('draining');
    this.#updateReady();
    void this.#loop?.stop();
    const running = this.#work?.all() ?? [];
    this.log.info({ reason, jobs: running.map((r) => r.jobPk), drainTimeoutMs: this.options.drainTimeoutMs }, 'draining');
    this.#drainTimer = setTimeout(() => {
      this.log.warn({ jobs: this.#jobPks() }, 'drain timeout: stopping the jobs still running; they will run again elsewhere');
      this.stopNow('drain timeout');
    }, this.options.drainTimeoutMs);
    this.#drainTimer.unref();
    void this.#slots!.onIdle().then(() => {
      if (this.#state !== 'draining') return;
      clearTimeout(this.#drainTimer);
      this.emit('drained');
      this.log.info({}, 'drained: no job runs any more');
      void this.#stopAndClose();
    });
  }

  /** Second signal or SIGQUIT: stop running jobs now, report them so they run elsewhere, then close. */
  stopNow(reason = 'stop requested'): void {
    if (this.#state === 'stopping' || this.#state === 'stopped' || this.#state === 'failed') return;
    this.log.warn({ reason, jobs: this.#jobPks() }, 'stopping now');
    void this.#stopAndClose();
  }

  /** A third signal: give up reporting (the journal lets the next start recover), close what can be closed. */
  abandon(): void {
    this.#work?.abandonAll();
    this.#stopSignal.abort();
  }

  /** Stop acquiring and stop the running jobs (reported so they run elsewhere). Idempotent. */
  #stopWork(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#drainTimer);
      if (canTransition(this.#state, 'stopping')) this.transition('stopping');
      this.#stopSignal.abort();
      this.#updateReady();
      await this.#loop?.stop();
      await this.#work?.stopAll('shutdown');
    })();
    return this.#stopping;
  }

  #stopAndClose(): Promise<void> {
    return this.close();
  }

  /**
   * Close everything, in order, each step on its own: stop acquiring, stop the jobs (reported so they
   * run elsewhere), stop the timers, the status endpoint, the clients, the journal. Idempotent: later
   * calls return the first call's promise. `closed` is emitted last.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const failed = this.#state === 'failed';
    this.emit('closing');
    const steps: [string, () => unknown][] = [
      ['stop acquiring and jobs', () => this.#stopWork()],
      ['stop heartbeat', () => this.#heartbeat?.stop()],
      ['stop fence', () => this.#fence?.stop()],
      ['close status endpoint', () => this.#status?.close()],
      ['close clients', () => {
        this.#nodes?.close();
        this.#base?.close();
      }],
      ['close journal', () => this.#journal?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.log.warn({ err, step: name }, 'close step failed');
      }
    }
    if (!failed && canTransition(this.#state, 'stopped')) this.transition('stopped');
    this.log.info({ state: this.#state }, 'agent closed');
    this.emit('closed');
    this.#resolveStopped();
  }

  // ── status ────────────────────────────────────────────────────────────────────────────────────

  #notReadyReasons(): string[] {
    return notReadyReasons({
      state: this.#state,
      authProblem: this.#authProblem,
      reachable: this.#contact.reachable,
      silentMs: this.#contact.silentForMs(),
      fenced: this.#fenced,
      lowDisk: this.#lowDisk,
    });
  }

  #updateReady(): void {
    const ready = this.#notReadyReasons().length === 0;
    if (ready !== this.#readyNow) {
      this.#readyNow = ready;
      this.metrics.ready.set(ready ? 1 : 0);
      this.emit('ready', ready);
    }
  }

  liveness(): Health {
    const reasons: string[] = [];
    if (this.#state === 'failed') reasons.push('failed');
    const journal = this.#journal;
    if (journal?.closed && this.#state !== 'stopped') reasons.push('journal closed');
    else if (journal && !journal.closed) {
      try {
        journal.unfinished();
      } catch (err) {
        reasons.push(`journal does not answer: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { ok: reasons.length === 0, reasons };
  }

  readiness(): Health {
    const reasons = this.#notReadyReasons();
    return { ok: reasons.length === 0, reasons };
  }

  get registry(): AgentMetrics['registry'] {
    return this.metrics.registry;
  }

  refreshMetrics(): void {
    this.metrics.serverSilentSeconds.set(this.#contact.silentForMs() / 1000);
    this.metrics.slotsBusy.set(this.#slots?.busy ?? 0);
    this.#updateReady();
  }

  /** A plain snapshot for `/status.json` and `ufdl-agent status`. */
  getStatus(): AgentStatus {
    const caps = this.#caps;
    const journal = this.#journal && !this.#journal.closed ? this.#journal : undefined;
    return {
      state: this.#state,
      ready: this.#notReadyReasons().length === 0,
      notReady: this.#notReadyReasons(),
      pid: process.pid,
      startedAt: this.#startedAt.toISOString(),
      serverUrl: this.options.serverUrl,
      capabilities: capabilitiesSummary(caps),
      lastServerContactAt: new Date(this.#contact.lastOkAt).toISOString(),
      serverSilentMs: this.#contact.silentForMs(),
      slots: (this.#slots?.snapshot() ?? []).map((s) => ({ ...s, nodePk: this.#nodes?.get(s.index)?.node.pk ?? null })),
      jobs: (this.#work?.all() ?? []).map((r) => r.status),
      loop: this.#loop?.getStatus() ?? null,
      fence: this.#fence ? { thresholdMs: this.#fence.thresholdMs, fencedCount: this.#fence.fencedCount } : null,
      journal: journal ? { path: journal.path, unfinished: journal.unfinished().length } : null,
    };
  }
}
