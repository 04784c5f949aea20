/**
 * Whether the agent can take jobs now (`/readyz`, the `ufdl_agent_ready` gauge, the `ready` event),
 * and each reason it cannot, as a short sentence. Some facts are the agent's (its state, self-fencing,
 * the server's silence); the ones kept here are learned from calls: the credentials refused at login
 * or by a poll, and free disk space in the work directory below `minFreeDiskBytes`.
 */
import { statfsSync } from 'node:fs';
import { isClientError } from '../client/errors.js';
import type { AgentState } from './lifecycle.js';
import type { ResolvedAgentOptions } from './options.js';

export interface ReadinessFacts {
  state: AgentState;
  authProblem: string | null;
  reachable: boolean;
  silentMs: number;
  fenced: boolean;
  lowDisk: string | null;
}

/** Why the agent cannot take jobs now; empty when it is ready. */
export function notReadyReasons(f: ReadinessFacts): string[] {
  const reasons: string[] = [];
  if (f.state === 'starting') reasons.push('starting (logging in, registering, recovering)');
  else if (f.state !== 'running') reasons.push(f.state);
  if (f.authProblem) reasons.push(f.authProblem);
  if (!f.reachable) reasons.push(`server unreachable for ${Math.round(f.silentMs / 1000)} s`);
  if (f.fenced) reasons.push('self-fenced: waiting for the server');
  if (f.lowDisk) reasons.push(f.lowDisk);
  return reasons;
}

export interface ReadinessContext {
  options: Pick<ResolvedAgentOptions, 'workDir' | 'minFreeDiskBytes' | 'username'>;
  log: { info(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /** The agent's own facts, read at each check. */
  facts(): Pick<ReadinessFacts, 'state' | 'reachable' | 'silentMs' | 'fenced'>;
  /** Told when the answer changes (the gauge, the `ready` event). */
  onChange(ready: boolean): void;
}

export class Readiness {
  readonly #ctx: ReadinessContext;
  #authProblem: string | null = null;
  #lowDisk: string | null = null;
  #readyNow = false;

  constructor(ctx: ReadinessContext) {
    this.#ctx = ctx;
  }

  /** Why the agent cannot take jobs now; empty when it is ready. */
  reasons(): string[] {
    return notReadyReasons({ ...this.#ctx.facts(), authProblem: this.#authProblem, lowDisk: this.#lowDisk });
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
    this.#authProblem = null;
    this.update();
  }

  /** A poll failed; refused credentials make the agent not ready until a poll is answered. */
  pollFailed(err: unknown): void {
    if (isClientError(err, 'auth')) {
      // The password changed under a running agent: not ready, loudly, and the loop's error
      // back-off is the bounded re-check (never a restart loop).
      if (!this.#authProblem) {
        this.#ctx.log.error({ user: this.#ctx.options.username }, "NOT READY: the server refuses the agent's credentials; fix the password (or password_file)");
      }
      this.#authProblem = `the server refuses the credentials of user '${this.#ctx.options.username}'`;
    }
    this.update();
  }

  /** Measure the free disk space of the work directory; false when it is below the threshold. */
  checkDisk(): boolean {
    const { workDir, minFreeDiskBytes } = this.#ctx.options;
    try {
      const stats = statfsSync(workDir);
      const free = stats.bavail * stats.bsize;
      const low = free < minFreeDiskBytes ? `only ${free} bytes free in ${workDir} (min_free_disk ${minFreeDiskBytes})` : null;
      if (low && !this.#lowDisk) this.#ctx.log.error({ free, min: minFreeDiskBytes }, 'NOT READY: low disk space; taking no jobs');
      this.#lowDisk = low;
    } catch {
      this.#lowDisk = null; // work dir not created yet: nothing to measure
    }
    return this.#lowDisk === null;
  }
}
