/**
 * The agent daemon (`ufdl-agent run`): one {@link Agent} owns the journal, the slots and their nodes,
 * the poll loop, the jobs in flight, the heartbeat, self-fencing and the status endpoint
 * (docs/ARCHITECTURE.md, "The parts").
 *
 * Lifecycle (`lifecycle.ts`): `starting` (journal, login, capabilities, hardware, registration,
 * recovery: `start/sequence.ts`) → `running` → `draining` (first SIGTERM) → `stopping` → `stopped`;
 * `failed` on a fatal error. One {@link Agent.transition} checks every edge and logs `{from, to}`.
 * The parts are assembled in `wiring.ts`; this file decides when they start and stop.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { describeHostLookupRetry, type HostLookupRetry } from '../host-lookup-wait.js';
import { waitUntilWritable } from './health/journal-failure.js';
import { journalProblem, Readiness } from './health/readiness.js';
import { startStatusServer, StatusListenError, type Health, type StatusServer } from './health/status-server.js';
import type { JobEvents } from './job/context.js';
import { JournalLockedError } from './journal/errors.js';
import { canTransition, IllegalStateError, type AgentState } from './lifecycle.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';
import { compareOptions, resolveAgentOptions, type AgentOptions, type OptionsChange, type ResolvedAgentOptions } from './options.js';
import { TemplateCache } from './poll/candidates.js';
import type { AgentDeps } from './ports.js';
import { ServerContact } from './server-contact.js';
import { refreshHardware, replanSlots, type LiveContext } from './slots/replan.js';
import { StartUpRefusedError } from './start/refusal.js';
import { startUp } from './start/sequence.js';
import { livenessOf, statusSnapshot, type AgentStatus } from './status.js';
import { createJobs, wireRunningParts, type AgentSide, type RunningParts } from './wiring.js';

export type { AgentStatus } from './status.js';
export type { AgentDeps } from './ports.js';

/** The agent's events: its own, and those of its jobs ({@link JobEvents}). */
export interface AgentEvents extends JobEvents {
  state: [{ from: AgentState; to: AgentState }];
  ready: [boolean];
  recovered: [{ jobPk: number; action: string }];
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
  /** What has been opened so far, from the first step of start-up on; `close()` closes what is here. */
  readonly #opened: Partial<RunningParts> = {};
  /** Every part, once start-up is done. */
  #running: RunningParts | undefined;
  #state: AgentState = 'starting';
  #acceptingChanged: { promise: Promise<void>; resolve: () => void } | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  #hardwareTimer: NodeJS.Timeout | undefined;
  #live: Promise<unknown> = Promise.resolve();
  #stopping: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  /** Why the journal could not be written while jobs ran (`journal-failure.ts`), or null. */
  #journalFailure: string | null = null;
  /** While the status endpoint waits for the resolver to look up its host: that wait, for `notReady` (and so systemd's status line). */
  #hostLookupWait: string | null = null;
  #restartNeeded: string | undefined;

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
        serverUrl: options.serverUrls.join(', '),
        reachable: this.#contact.reachable,
        silentMs: this.#contact.silentForMs(),
        fenced: this.#running?.watch.fenced ?? false,
        // A retiring slot's job (one beyond the plan after a restart with fewer slots) fills no slot of the
        // plan, unless a slot of the plan registers the node it reports as (that slot waits for it).
        slots: this.#opened.slots && {
          total: this.#opened.slots.size,
          running: this.#opened.slots.workingInPlan,
          waitingForNode: this.#opened.slots.waitingForNodeInPlan,
        },
        journalProblem: this.#journalFailure ?? journalProblem(this.#opened.journal),
        hostLookupWait: this.#hostLookupWait,
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
    return this.#opened.status?.url;
  }

  /**
   * Why the agent stopped itself so that a restart recovers its jobs (a journal write failed while
   * they ran), or undefined. The caller exits with a status that makes systemd restart it
   * (`ufdl-agent run`: 74).
   */
  get restartNeeded(): string | undefined {
    return this.#restartNeeded;
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
    if (this.#state !== 'starting' || this.#opened.journal) throw new IllegalStateError(this.#state, 'start');
    try {
      await this.#startUp();
    } catch (err) {
      if (this.#stopSignal.signal.aborted && this.#state !== 'starting') return; // stopped during start-up
      if (err instanceof JournalLockedError) {
        // A user's mistake, not a bug: one line that says who holds the journal, no stack.
        this.log.error({ journal: err.path, holderPid: err.holder?.pid ?? null, holderHost: err.holder?.hostname ?? null }, err.message);
      } else if (err instanceof StatusListenError) {
        // Where the status endpoint cannot listen: the configuration's or the resolver's doing, said in one line.
        this.log.error({ code: err.code, temporary: err.temporary }, err.message);
      } else if (err instanceof StartUpRefusedError) {
        // Not a bug either: the server's answer and what to check, in one line.
        this.log.error({ step: err.step, status: err.status, detail: err.detail, check: err.suspect }, err.message);
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
    const started = await startUp({
      options: o,
      deps: this.#deps,
      log: this.log,
      metrics: this.metrics,
      contact: this.#contact,
      signal: this.#stopSignal.signal,
      opened: this.#opened,
      startStatus: async () => (o.status ? this.#startStatusServer(o.status) : undefined),
      onAuthProblem: (problem) => this.#readiness.setAuthProblem(problem),
      createJobs: (parts) => createJobs(this.#side(), parts),
      onRecovered: (jobPk, action) => {
        this.metrics.recoveries.inc({ action });
        this.emit('recovered', { jobPk, action });
      },
    });
    // A reload while starting (SIGHUP; standalone replays one that came before its agent existed)
    // changed the options in force after the start-up planned the slots from those it began with:
    // the slot count the reload reported applied is applied here, before the first poll.
    if (this.#options.slots !== o.slots && !this.#stopSignal.signal.aborted) {
      await this.#liveStep(() => replanSlots(this.#liveContext(started), this.#options, started.nodes.hardware)).catch((err: unknown) => {
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'the slot count of a reload while starting was not applied');
      });
    }
    if (this.#stopSignal.signal.aborted) return;
    const running = wireRunningParts(this.#side(), started);
    Object.assign(this.#opened, running);
    this.#running = running;
    this.transition('running');
    void running.loop.start();
    this.#readiness.update();
    this.#scheduleHardwareCheck();
  }

  /**
   * The status endpoint; while it waits for the resolver (host-lookup-wait.ts, up to 10 minutes at
   * boot) that wait is a reason the agent is not ready, so that the starting status line says why
   * the start makes no progress.
   */
  async #startStatusServer(where: { host: string; port: number }): Promise<StatusServer> {
    const onRetry = (retry: HostLookupRetry) => {
      this.#hostLookupWait = `the status endpoint is ${describeHostLookupRetry(retry)}`;
      this.#readiness.update();
    };
    try {
      return await startStatusServer(this, where, { log: this.log, signal: this.#stopSignal.signal, onRetry });
    } finally {
      this.#hostLookupWait = null;
    }
  }

  /** What the parts need of this agent (`wiring.ts`). */
  #side(): AgentSide {
    return {
      options: this.options,
      log: this.log,
      metrics: this.metrics,
      contact: this.#contact,
      readiness: this.#readiness,
      templates: this.#templates,
      // A job's events are the agent's own (AgentEvents extends JobEvents).
      emit: (event, ...args) => this.emit(event as keyof JobEvents, ...(args as JobEvents[keyof JobEvents])),
      takesWork: () => this.#state === 'running' || this.#state === 'starting',
      accepting: () => this.#accepting(),
      acceptingChanged: () => this.#whenAcceptingChanges(),
      skip: (jobPk, reason) => this.#running?.loop.skip(jobPk, reason),
      journalWriteFailed: (jobPk, err) => this.#journalWriteFailed(jobPk, err),
      onFenced: (e) => {
        this.metrics.fences.inc();
        this.emit('fenced', e);
        this.#readiness.update();
      },
      onFenceLifted: () => {
        this.#readiness.update();
        this.#notifyAccepting();
      },
    };
  }

  // ── what changes while running (slots/replan.ts) ───────────────────────────────────────────────

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
      const running = this.#running;
      if (change.applied.includes('pollScheduleS')) running?.loop.setPollSchedule(this.#options.pollScheduleS);
      if (change.applied.includes('slots') && this.#state === 'running' && running) {
        await replanSlots(this.#liveContext(running), this.#options, running.nodes.hardware);
      }
      return change;
    });
  }

  /** Detect GPUs and memory again; node records and slots follow a change. Resolves whether it changed. */
  refreshHardware(): Promise<boolean> {
    return this.#liveStep(async () => {
      const running = this.#running;
      if (this.#state !== 'running' || !running) return false;
      return refreshHardware(this.#liveContext(running), this.#options, () => running.base.listHardware({ signal: this.#stopSignal.signal }));
    });
  }

  /** Live changes run one at a time, in the order asked. */
  #liveStep<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#live.then(step, step);
    this.#live = run.catch(() => {});
    return run;
  }

  #liveContext(running: Pick<RunningParts, 'slots' | 'nodes'>): LiveContext {
    return {
      slots: running.slots,
      nodes: running.nodes,
      log: this.log,
      detectHardware: () => this.#deps.detectHardware(),
      onSlotsChanged: () => {
        this.metrics.slotsTotal.set(running.slots.size);
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

  // ── taking work ───────────────────────────────────────────────────────────────────────────────

  #accepting(): boolean {
    // Not the credentials: the loop's own polls are what notice that they work again.
    if (this.#state !== 'running' || this.#running?.watch.fenced || this.#journalFailure !== null) return false;
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
    return (this.#opened.jobs?.all() ?? []).map((r) => r.jobPk);
  }

  // ── a journal that cannot be written (journal-failure.ts) ─────────────────────────────────────

  /**
   * A job's journal write failed: its entry no longer says where it stands, and nothing in a running
   * agent would revisit it (the job would stay started on the server, its node refused every start).
   * Take no more work, say why on `/readyz`, and once the journal takes a write again exit for a
   * restart, whose recovery settles every entry the way it settles them after a crash.
   */
  #journalWriteFailed(jobPk: number, err: unknown): void {
    if (this.#journalFailure !== null) return;
    const message = err instanceof Error ? err.message : String(err);
    this.#journalFailure = `the journal could not be written (${message}); the agent takes no jobs and exits for a restart (status 74) once it can write again, so that recovery finishes job ${jobPk}`;
    this.log.error({ jobPk, err: message, journal: this.#opened.journal?.path }, `NOT READY: ${this.#journalFailure}`);
    void this.#running?.loop.stop();
    this.#readiness.update();
    const journal = this.#opened.journal;
    if (!journal) return;
    void waitUntilWritable(journal, this.#stopSignal.signal, this.log, { workDir: this.options.workDir }).then((writable) => {
      if (!writable) return; // stopped meanwhile: the next start recovers anyway
      this.#restartNeeded = this.#journalFailure!;
      this.log.error({ jobPk }, 'the journal can be written again: exiting so that the restart recovers the jobs (their children keep running and are re-attached)');
      // Not stopped and requeued as a shutdown would: the restart re-attaches them.
      this.#opened.jobs?.abandonAll();
      if (canTransition(this.#state, 'failed')) this.transition('failed');
      void this.close();
    });
  }

  // ── stopping ──────────────────────────────────────────────────────────────────────────────────

  /** First SIGTERM/SIGINT: take no new jobs; running ones may finish within `drainTimeoutMs`. */
  drain(reason = 'drain requested'): void {
    if (this.#state === 'starting') return this.stopNow(reason);
    const running = this.#running;
    if (this.#state !== 'running' || !running) return;
    this.transition('draining');
    this.#readiness.update();
    void running.loop.stop();
    this.log.info({ reason, jobs: this.#jobPks(), drainTimeoutMs: this.options.drainTimeoutMs }, 'draining');
    this.#drainTimer = setTimeout(() => {
      this.log.warn({ jobs: this.#jobPks() }, 'drain timeout: stopping the jobs still running; they will run again elsewhere');
      this.stopNow('drain timeout');
    }, this.options.drainTimeoutMs);
    this.#drainTimer.unref();
    void running.slots.onIdle().then(() => {
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
    this.#opened.jobs?.abandonAll();
    this.#stopSignal.abort();
  }

  /** Stop acquiring and stop the running jobs (reported so they run elsewhere). Idempotent. */
  #stopWork(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#drainTimer);
      if (canTransition(this.#state, 'stopping')) this.transition('stopping');
      this.#stopSignal.abort();
      this.#readiness.update();
      await this.#opened.loop?.stop();
      // Exiting for a restart (a journal write failed): the jobs keep running for recovery to re-attach.
      if (this.#restartNeeded === undefined) await this.#opened.jobs?.stopAll('shutdown');
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
    const parts = this.#opened;
    this.emit('closing');
    const steps: [string, () => unknown][] = [
      ['stop acquiring and jobs', () => this.#stopWork()],
      ['stop hardware checks', () => clearTimeout(this.#hardwareTimer)],
      ['stop heartbeat', () => parts.watch?.stopHeartbeat()],
      ['stop fence', () => parts.watch?.stopFence()],
      ['stop renewing leases', () => parts.leases?.close()],
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
    return livenessOf(this.#state, this.#opened.journal);
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
    this.metrics.slotsBusy.set(this.#opened.slots?.running ?? 0);
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
      parts: this.#opened,
    });
  }
}
