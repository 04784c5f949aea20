/**
 * Whether the agent can take a job now (`/readyz`, the `ufdl_agent_ready` gauge, the `ready` event),
 * and each reason it cannot, as a short sentence (issue 4 "Deployment"): not running (starting,
 * draining, stopping), the server unreachable, the credentials refused, self-fenced, no free slot,
 * the journal not writable, or free disk in the work directory below `minFreeDiskBytes`.
 *
 * Some facts are the agent's (its state, the server's silence, self-fencing, its slots, its journal);
 * the ones kept here are learned from calls: the credentials refused at login or by a poll, and the
 * free disk space, measured at each check.
 */
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { isClientError } from '../../client/errors.js';
import type { AgentState } from '../lifecycle.js';
import type { ResolvedAgentOptions } from '../options.js';
import { freeBytesAt } from './free-space.js';

export interface ReadinessFacts {
  state: AgentState;
  serverUrl: string;
  authProblem: string | null;
  /** Why polls keep failing although the server answers (a malformed job list, 5xx…), or null. */
  pollProblem: string | null;
  reachable: boolean;
  silentMs: number;
  fenced: boolean;
  /**
   * All slots, those running a job or whose node runs one (`running`), and of these the ones only
   * waiting for their node's job in another slot (`waitingForNode`); undefined before the slots are planned.
   */
  slots: { total: number; running: number; waitingForNode?: number } | undefined;
  /** Why the journal cannot be written, or null. */
  journalProblem: string | null;
  lowDisk: string | null;
  /** While the status endpoint waits for the resolver to look up its host: that wait, as a line (host-lookup-wait.ts). */
  hostLookupWait?: string | null;
}

const STATE_REASONS: Record<Exclude<AgentState, 'running'>, string> = {
  starting: 'the agent is starting: logging in, registering, recovering the journal',
  draining: 'the agent is draining: it takes no new jobs',
  stopping: 'the agent is stopping',
  stopped: 'the agent has stopped',
  failed: 'the agent has failed',
};

/** Why the agent cannot take a job now; empty when it is ready. */
export function notReadyReasons(f: ReadinessFacts): string[] {
  const reasons: string[] = [];
  if (f.state !== 'running') reasons.push(STATE_REASONS[f.state]);
  if (f.hostLookupWait) reasons.push(f.hostLookupWait);
  if (!f.reachable) reasons.push(`the server ${f.serverUrl} cannot be reached (no answer for ${Math.round(f.silentMs / 1000)} s)`);
  if (f.authProblem) reasons.push(f.authProblem);
  if (f.pollProblem && f.reachable) reasons.push(f.pollProblem);
  if (f.fenced) reasons.push('self-fenced: waiting for the server to answer');
  if (f.slots && f.slots.running >= f.slots.total) reasons.push(noFreeSlot(f.slots.total, f.slots.waitingForNode ?? 0));
  if (f.journalProblem) reasons.push(f.journalProblem);
  if (f.lowDisk) reasons.push(f.lowDisk);
  return reasons;
}

function noFreeSlot(total: number, waitingForNode: number): string {
  if (waitingForNode === 0) return `no free slot: all ${total} slot(s) run a job`;
  return `no free slot: ${total - waitingForNode} slot(s) run a job, ${waitingForNode} wait(s) for its node's job in another slot to end`;
}

/** Why the journal at `journal.path` cannot be written, or null (also null before it is opened). */
export function journalProblem(journal: { path: string; closed: boolean } | undefined): string | null {
  if (!journal) return null;
  if (journal.closed) return 'the journal is closed';
  for (const path of [journal.path, dirname(journal.path)]) {
    try {
      accessSync(path, constants.W_OK);
    } catch (err) {
      return `the journal is not writable: ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
  }
  return null;
}

/** Consecutive failed polls after which the agent says it is not ready (one failure is a blip). */
export const POLL_FAILURES_NOT_READY = 3;

export interface ReadinessContext {
  options: Pick<ResolvedAgentOptions, 'workDir' | 'minFreeDiskBytes' | 'username'>;
  log: { info(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /** The agent's own facts, read at each check. */
  facts(): Omit<ReadinessFacts, 'authProblem' | 'pollProblem' | 'lowDisk'>;
  /** Told when the answer changes (the gauge, the `ready` event). */
  onChange(ready: boolean): void;
}

export class Readiness {
  readonly #ctx: ReadinessContext;
  #authProblem: string | null = null;
  #pollFailures = 0;
  #lastPollError = '';
  #lowDisk: string | null = null;
  #readyNow = false;

  constructor(ctx: ReadinessContext) {
    this.#ctx = ctx;
  }

  /** Why the agent cannot take a job now; empty when it is ready. Measures the free disk space. */
  reasons(): string[] {
    this.checkDisk();
    return notReadyReasons({ ...this.#ctx.facts(), authProblem: this.#authProblem, pollProblem: this.#pollProblem(), lowDisk: this.#lowDisk });
  }

  /** Check again; tell {@link ReadinessContext.onChange} when the answer changed. */
  update(): void {
    const ready = this.reasons().length === 0;
    if (ready !== this.#readyNow) {
      this.#readyNow = ready;
      this.#ctx.onChange(ready);
    }
  }

  /** Login's verdict on the credentials: the problem, or null once they work (or the cause is elsewhere). */
  setAuthProblem(problem: string | null): void {
    this.#authProblem = problem;
    this.update();
  }

  /** A poll was answered: the credentials work (again). */
  pollAnswered(): void {
    if (this.#authProblem) this.#ctx.log.info({}, 'the server accepts the credentials again');
    if (this.#pollFailures >= POLL_FAILURES_NOT_READY) this.#ctx.log.info({ failures: this.#pollFailures }, 'polling the job list works again');
    this.#authProblem = null;
    this.#pollFailures = 0;
    this.update();
  }

  /** A poll failed; refused credentials make the agent not ready until a poll is answered. */
  pollFailed(err: unknown): void {
    this.#pollFailures++;
    this.#lastPollError = err instanceof Error ? err.message : String(err);
    if (this.#pollFailures === POLL_FAILURES_NOT_READY) {
      this.#ctx.log.error({ failures: this.#pollFailures, err: this.#lastPollError }, 'NOT READY: polling the job list keeps failing');
    }
    if (isClientError(err, 'auth')) {
      // The password changed under a running agent: not ready, loudly, and the loop's error
      // back-off is the bounded re-check (never a restart loop).
      if (!this.#authProblem) {
        this.#ctx.log.error(
          { user: this.#ctx.options.username },
          "NOT READY: the server refuses the agent's credentials: set the password on the server, or fix the agent's password_file (read again at each attempt; a password set in the environment needs a restart)",
        );
      }
      this.#authProblem = `the server refuses the credentials of user '${this.#ctx.options.username}'`;
    }
    this.update();
  }

  #pollProblem(): string | null {
    if (this.#pollFailures < POLL_FAILURES_NOT_READY) return null;
    return `polling the job list failed ${this.#pollFailures} times in a row (last: ${this.#lastPollError.slice(0, 200)})`;
  }

  /** Measure the free disk space of the work directory; false when it is below the threshold. */
  checkDisk(): boolean {
    const { workDir, minFreeDiskBytes } = this.#ctx.options;
    try {
      const free = freeBytesAt(workDir);
      const low = free < minFreeDiskBytes ? `low disk space: ${free} bytes free in ${workDir}, below min_free_disk (${minFreeDiskBytes})` : null;
      if (low && !this.#lowDisk) this.#ctx.log.error({ free, min: minFreeDiskBytes }, 'NOT READY: low disk space; taking no jobs');
      this.#lowDisk = low;
    } catch {
      this.#lowDisk = null; // work dir not created yet: nothing to measure
    }
    return this.#lowDisk === null;
  }
}
