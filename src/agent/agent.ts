/**
 * The agent daemon (`ufdl-agent run`): one {@link Agent} owns the journal, the slots and their nodes,
 * the poll loop, the job runners, the heartbeat, self-fencing and the status endpoint.
 *
 * Lifecycle (`lifecycle.ts`): `starting` (journal, login, capabilities, hardware, registration,
 * recovery: `start-up-sequence.ts`) → `running` → `draining` (first SIGTERM) → `stopping` → `stopped`;
 * `failed` on a fatal error. One {@link Agent.transition} checks every edge and logs `{from, to}`.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { livenessOf, statusSnapshot, type AgentStatus } from './status.js';
import { createAgentLoop } from './wiring.js';
import { TemplateCache } from './poll/candidates.js';
import { ServerContact } from './health/fence.js';
import { JournalLockedError } from './journal/errors.js';
import { liveLogSettings } from './logs/settings.js';
import { leasesFor, type JobLeases } from './job/leases.js';
import type { RunOutcome } from './job/runner.js';
import { canTransition, IllegalStateError, type AgentState } from './lifecycle.js';
import { compareOptions, refreshHardware, replanSlots, type LiveContext, type OptionsChange } from './slots/replan.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';
import type { SlotNode } from './slots/nodes.js';
import { resolveAgentOptions, type AgentOptions, type ResolvedAgentOptions } from './options.js';
import { journalProblem, Readiness } from './health/readiness.js';
import { Runners } from './job/in-flight.js';
import { ServerWatch } from './health/server-watch.js';
import { startUp, type AgentDeps, type AgentParts } from './start/sequence.js';
import { startStatusServer, type Health } from './health/status-server.js';

export type { AgentStatus } from './status.js';
export type { AgentDeps } from './start/sequence.js';

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
  #options: ResolvedAgentOptions;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly #deps: AgentDeps;
  readonly #contact = new ServerContact();
  readonly #templates = new TemplateCache();
  readonly #startedAt = new Date();
  readonly #readiness: Readiness;
  /** Aborted when the agent stops: start-up waits, recovery and reporting retries give up. */
  readonly #stopSignal = new AbortController();
  /** What start-up has opened so far; `close()` closes what is there. */
  readonly #parts: AgentParts = {};
  #state: AgentState = 'starting';
  #acceptingChanged: { promise: Promise<void>; resolve: () => void } | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #hardwareTimer: NodeJS.Timeout | undefined;
  #live: Promise<unknown> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #stopped: Promise<void>;
  #leases: JobLeases | undefined;
  #resolveStopped!: () => void;

  constructor(options: ResolvedAgentOptions, log: Logger, deps: AgentDeps) {
    super();
    // Long-lived: every start-up and recovery call listens to it (not a leak).
    setMaxListeners(0, this.#stopSignal.signal);
    this.#options = options;
    this.log = log;
    this.#deps = deps;
    this.metrics = createAgentMetrics();
    this.#readiness = new Readiness({
      options,
      log,
      facts: () => ({
        state: this.#state,
        serverUrl: options.serverUrl,
        reachable: this.#contact.reachable,
        silentMs: this.#contact.silentForMs(),
        fenced: this.#parts.watch?.fenced ?? false,
        slots: this.#parts.slots && { total: this.#parts.slots.size, running: this.#parts.slots.running },
        journalProblem: journalProblem(this.#parts.journal),
      }),
      onChange: (ready) => {
        this.metrics.ready.set(ready ? 1 : 0);
        this.emit('ready', ready);
      },
    });
    this.#stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  get state(): AgentState {
    return this.#state;
  }

  /** The options in force: those of the start, with the live ones a reload changed ({@link reconfigure}). */
  get options(): ResolvedAgentOptions {
    return this.#options;
  }

  /** The status endpoint's URL, once it listens. */
  get statusUrl(): string | undefined {
    return this.#parts.status?.url;
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
    if (this.#state !== 'starting' || this.#parts.journal) throw new IllegalStateError(this.#state, 'start');
    try {
      await this.#startUp();
    } catch (err) {
      if (this.#stopSignal.signal.aborted && this.#state !== 'starting') return; // stopped during start-up
      if (err instanceof JournalLockedError) {
        // A user's mistake, not a bug: one line that says who holds the journal, no stack.
        this.log.error({ journal: err.path, holderPid: err.holder?.pid ?? null, holderHost: err.holder?.hostname ?? null }, err.message);
      } else {
        this.log.error({ err }, 'the agent could not start');
      }
      if (canTransition(this.#state, 'failed')) this.transition('failed');
      if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
      await this.close();
      throw err;
    }
  }

  async #startUp(): Promise<void> {
    const o = this.options;
    await startUp({
      options: o,
      deps: this.#deps,
      log: this.log,
      metrics: this.metrics,
      contact: this.#contact,
      signal: this.#stopSignal.signal,
      parts: this.#parts,
      startStatus: async () => (o.status ? startStatusServer(this, o.status) : undefined),
      onAuthProblem: (problem) => this.#readiness.setAuthProblem(problem),
      createRunners: () => this.#createRunners(),
      onRecovered: (jobPk, action) => {
        this.metrics.recoveries.inc({ action });
        this.emit('recovered', { jobPk, action });
      },
    });
    if (this.#stopSignal.signal.aborted) return;
    this.#startWatch();
    const loop = createAgentLoop({
      options: o,
      parts: this.#parts,
      templates: this.#templates,
      log: this.log,
      metrics: this.metrics,
      readiness: this.#readiness,
      accepting: () => this.#accepting(),
      acceptingChanged: () => this.#whenAcceptingChanges(),
    });
    this.#parts.loop = loop;
    this.transition('running');
    void loop.start();
    this.#readiness.update();
    this.#scheduleHardwareCheck();
  }

  // ── what changes while running (live-config.ts) ───────────────────────────────────────────────

  /**
   * A configuration reload (SIGHUP): apply the settings that can change live (the poll schedule, the
   * slot count for new jobs) and report which changed settings need a restart. Throws a TypeError
   * naming the setting when `input` is invalid; nothing is applied then.
   */
  reconfigure(input: AgentOptions): Promise<OptionsChange> {
    const next = resolveAgentOptions(input);
    return this.#liveStep(async () => {
      const change = compareOptions(this.#options, next);
      const applied = Object.fromEntries(change.applied.map((k) => [k, next[k as keyof ResolvedAgentOptions]]));
      this.#options = Object.freeze({ ...this.#options, ...applied });
      if (change.applied.includes('pollScheduleS')) this.#parts.loop?.setPollSchedule(this.#options.pollScheduleS);
      if (change.applied.includes('slots') && this.#state === 'running' && this.#parts.nodes) {
        await replanSlots(this.#liveContext(), this.#options, this.#parts.nodes.hardware);
      }
      return change;
    });
  }

  /** Detect GPUs and memory again; node records and slots follow a change. Resolves whether it changed. */
  refreshHardware(): Promise<boolean> {
    return this.#liveStep(async () => {
      if (this.#state !== 'running') return false;
      const base = this.#parts.base!;
      return refreshHardware(this.#liveContext(), this.#options, () => base.listHardware({ signal: this.#stopSignal.signal }));
    });
  }

  /** Live changes run one at a time, in the order asked. */
  #liveStep<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#live.then(step, step);
    this.#live = run.catch(() => {});
    return run;
  }

  #liveContext(): LiveContext {
    return {
      parts: this.#parts,
      log: this.log,
      detectHardware: () => this.#deps.detectHardware(),
      onSlotsChanged: () => {
        this.metrics.slotsTotal.set(this.#parts.slots?.size ?? 0);
        this.#readiness.update();
      },
    };
  }

  /** The periodic hardware check; re-arms itself after each run, never overlapping. */
  #scheduleHardwareCheck(): void {
    if (this.#options.hardwareIntervalMs <= 0 || this.#stopSignal.signal.aborted) return;
    this.#hardwareTimer = setTimeout(() => {
      this.refreshHardware()
        .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'hardware check failed; trying again later'))
        .finally(() => this.#scheduleHardwareCheck());
    }, this.#options.hardwareIntervalMs);
    this.#hardwareTimer.unref();
  }

  /** The heartbeat and self-fencing (`server-watch.ts`). */
  #startWatch(): void {
    const watch = new ServerWatch({
      contact: this.#contact,
      capabilities: this.#parts.caps,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      fenceMarginMs: this.options.fenceMarginMs,
      journal: this.#parts.journal!,
      log: this.log,
      busyNodes: () => this.#busyNodes(),
      firstNode: () => this.#parts.nodes?.all[0],
      withChild: () => this.#parts.work?.withChild() ?? [],
      afterBeat: () => this.#readiness.update(),
      onFenced: (e) => {
        this.metrics.fences.inc();
        this.emit('fenced', e);
        this.#readiness.update();
      },
      onFenceLifted: () => {
        this.#readiness.update();
        this.#notifyAccepting();
      },
    });
    this.#parts.watch = watch;
    watch.start();
  }

  #busyNodes(): SlotNode[] {
    const busy = new Set((this.#parts.work?.all() ?? []).map((r) => r.slot.index));
    return (this.#parts.nodes?.all ?? []).filter((n) => busy.has(n.spec.index));
  }

  // ── taking work ───────────────────────────────────────────────────────────────────────────────

  #accepting(): boolean {
    // Not the credentials: the loop's own polls are what notice that they work again.
    if (this.#state !== 'running' || this.#parts.watch?.fenced) return false;
    return this.#readiness.checkDisk();
  }

  /** Resolves when {@link Agent.#accepting} may have changed (a transition, the fence lifted). */
  #whenAcceptingChanges(): Promise<void> {
    if (!this.#acceptingChanged) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#acceptingChanged = { promise, resolve };
    }
    return this.#acceptingChanged.promise;
  }

  #notifyAccepting(): void {
    const changed = this.#acceptingChanged;
    this.#acceptingChanged = undefined;
    changed?.resolve();
  }

  #jobPks(): number[] {
    return (this.#parts.work?.all() ?? []).map((r) => r.jobPk);
  }

  #createRunners(): Runners {
    const leases = this.#createLeases();
    return new Runners({
      leases,
      slots: this.#parts.slots!,
      journal: this.#parts.journal!,
      executor: this.#parts.executors!,
      options: this.options,
      useWebSocket: this.#parts.caps?.extensions.websocket.auth === true,
      liveLog: liveLogSettings(this.options, this.#parts.caps),
      log: this.log,
      metrics: this.metrics,
      accepting: () => this.#state === 'running' || this.#state === 'starting',
      skip: (pk, reason) => this.#parts.loop?.skip(pk, reason),
      onSlotsChanged: () => this.#readiness.update(),
      events: {
        acquired: (e) => this.emit('acquired', e),
        started: (e) => this.emit('started', e),
        progressed: (e) => this.emit('progressed', e),
        finished: (e) => this.emit('finished', e),
      },
    });
  }

  /**
   * With lost-node recovery on the server, each child's wrapper watches a lease that the server's
   * answers renew (`job-leases.ts`), so that a frozen agent's jobs stop by themselves.
   */
  #createLeases(): JobLeases | undefined {
    this.#leases = leasesFor(this.#parts.caps, this.#contact, this.options, this.log, (jobPk) => {
      this.metrics.fences.inc();
      this.#parts.work?.get(jobPk)?.stop('fenced');
    });
    return this.#leases;
  }

  // ── stopping ──────────────────────────────────────────────────────────────────────────────────

  /** First SIGTERM/SIGINT: take no new jobs; running ones may finish within `drainTimeoutMs`. */
  drain(reason = 'drain requested'): void {
    if (this.#state === 'starting') return this.stopNow(reason);
    if (this.#state !== 'running') return;
    this.transition('draining');
    this.#readiness.update();
    void this.#parts.loop?.stop();
    this.log.info({ reason, jobs: this.#jobPks(), drainTimeoutMs: this.options.drainTimeoutMs }, 'draining');
    this.#drainTimer = setTimeout(() => {
      this.log.warn({ jobs: this.#jobPks() }, 'drain timeout: stopping the jobs still running; they will run again elsewhere');
      this.stopNow('drain timeout');
    }, this.options.drainTimeoutMs);
    this.#drainTimer.unref();
    void this.#parts.slots!.onIdle().then(() => {
      if (this.#state !== 'draining') return;
      clearTimeout(this.#drainTimer);
      this.emit('drained');
      this.log.info({}, 'drained: no job runs any more');
      void this.close();
    });
  }

  /** Second signal or SIGQUIT: stop running jobs now, report them so they run elsewhere, then close. */
  stopNow(reason = 'stop requested'): void {
    if (this.#state === 'stopping' || this.#state === 'stopped' || this.#state === 'failed') return;
    this.log.warn({ reason, jobs: this.#jobPks() }, 'stopping now');
    void this.close();
  }

  /** A third signal: give up reporting (the journal lets the next start recover), close what can be closed. */
  abandon(): void {
    this.#parts.work?.abandonAll();
    this.#stopSignal.abort();
  }

  /** Stop acquiring and stop the running jobs (reported so they run elsewhere). Idempotent. */
  #stopWork(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#drainTimer);
      if (canTransition(this.#state, 'stopping')) this.transition('stopping');
      this.#stopSignal.abort();
      this.#readiness.update();
      await this.#parts.loop?.stop();
      await this.#parts.work?.stopAll('shutdown');
    })();
    return this.#stopping;
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
    const parts = this.#parts;
    this.emit('closing');
    const steps: [string, () => unknown][] = [
      ['stop acquiring and jobs', () => this.#stopWork()],
      ['stop hardware checks', () => clearTimeout(this.#hardwareTimer)],
      ['stop heartbeat', () => parts.watch?.stopHeartbeat()],
      ['stop fence', () => parts.watch?.stopFence()],
      ['stop renewing leases', () => this.#leases?.close()],
      ['close status endpoint', () => parts.status?.close()],
      ['close clients', () => {
        parts.nodes?.close();
        parts.base?.close();
      }],
      ['close journal', () => parts.journal?.close()],
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

  liveness(): Health {
    return livenessOf(this.#state, this.#parts.journal);
  }

  readiness(): Health {
    const reasons = this.#readiness.reasons();
    return { ok: reasons.length === 0, reasons };
  }

  get registry(): AgentMetrics['registry'] {
    return this.metrics.registry;
  }

  refreshMetrics(): void {
    this.metrics.serverSilentSeconds.set(this.#contact.silentForMs() / 1000);
    this.metrics.slotsBusy.set(this.#parts.slots?.running ?? 0);
    this.#readiness.update();
  }

  /** A plain snapshot for `/status.json` and `ufdl-agent status`. */
  getStatus(): AgentStatus {
    return statusSnapshot({
      state: this.#state,
      notReady: this.#readiness.reasons(),
      startedAt: this.#startedAt,
      serverUrl: this.options.serverUrl,
      contact: this.#contact,
      parts: this.#parts,
    });
  }
}
